"""The UKey step shared by renewal, change, unlock and PIN change, run by the bridge on the PC.

Until the account has a paired bridge the flow explains pairing (a code and the
``ukey-bridge pair CODE --server URL`` command) and waits; once a bridge is online the job is
submitted and every update the bridge reports is told in plain words: confirm on the PC, type
the PIN on the PC (never in the chat: the chat never asks for it and warns when one is sent),
wrong PIN with the tries left, locked (unlock offered), wrong key, no key, key removed,
declined, done. A job that succeeds completes the platform order with the key's serial.
"""

# Over 600 lines: one flow whose steps (pairing, job, completion, resume after the job moved on)
# share the job's state and its wording; the pairing wait is the piece to move out if it grows.

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asn1crypto import parser
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bot.bridge.hub import BridgeHub, NoBridgePaired, UnknownJob
from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Finish, Flow, GoTo, Next, Outcome, Stay, Wait
from bot.engine.messages import ExternalEvent, Option
from bot.engine.tokens import bind
from handlers.my_seals import local_date, on_platform_error, order_status_text
from handlers.services import services, token
from platform_client.errors import PlatformClientError
from platform_client.seals import Seal

HUB_KEY = "bridge_hub"  # the composition root puts the hub in HandlerServices.extra under it
PIN_JOB_PREFIX = "pin:"
OCTET_STRING_TAG = 4
EVENT_PREFIX = "ukey."
RESET_PIN = "12345678"
JOBS_MEMORY = "ukey_jobs"  # memory[JOBS_MEMORY]: order id (or pin:<seal>) -> the job submitted for it
TOLD_MEMORY = "ukey_told"  # memory[TOLD_MEMORY]: the latest finished jobs whose end the user was told
TOLD_KEPT = 20
ORDER_JOB_TYPES = {"renewal": "renewal", "change": "change", "unlock": "unlock"}
# What looks like a PIN typed into the chat by mistake: 4 to 16 digits or letters, nothing else.
LOOKS_LIKE_PIN = re.compile(r"^[0-9A-Za-z]{4,16}$")
RETRYABLE = frozenset(
    {
        "wrong_pin",
        "no_key",
        "wrong_key",
        "key_removed",
        "declined",
        "connection_lost",
        "pin_invalid",
        "failed",
        "issuance_failed",
        "cert_mismatch",
        "refused",
    }
)


def hub_of(ctx: Ctx) -> BridgeHub | None:
    hub = services(ctx).extra.get(HUB_KEY)
    return hub if isinstance(hub, BridgeHub) else None


def account_id(ctx: Ctx) -> str:
    assert ctx.session is not None
    return ctx.session.account_id


def bridge_hub(ctx: Ctx) -> BridgeHub:
    hub = hub_of(ctx)
    if hub is None:
        raise RuntimeError("the UKey bridge hub is not installed")
    return hub


# ---- what the job is -----------------------------------------------------------------------------


def certificate_sha256_in_seal(seseal_der: bytes, serial_hex: str) -> str | None:
    """The SHA-256 of the seal's signer certificate with this serial, found in its SESeal.

    The SESeal lists the holder's certificate (GB/T 38540 certList) next to the seal maker's:
    every OCTET STRING in the DER that parses as a certificate is a candidate, and the serial
    decides. Walking the DER rather than a schema keeps this working across SESeal versions.
    """
    wanted = serial_hex.lower().lstrip("0")
    pending = [seseal_der]
    while pending:
        data = pending.pop()
        offset = 0
        while offset < len(data):
            try:
                _class, constructed, tag, header, contents, trailer = parser.parse(data[offset:])
            except ValueError:
                break
            offset += len(header) + len(contents) + len(trailer)
            if constructed:
                pending.append(contents)
            elif tag == OCTET_STRING_TAG:
                try:
                    cert = x509.load_der_x509_certificate(contents)
                except ValueError:
                    continue
                if format(cert.serial_number, "x") == wanted:
                    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return None


async def _replaces(ctx: Ctx, seal: Seal) -> str:
    if seal.seseal_document_id is None or seal.certificate_serial is None:
        return ""
    content = await services(ctx).platform.documents.content(token(ctx), seal.seseal_document_id)
    return certificate_sha256_in_seal(content, seal.certificate_serial) or ""


async def load_job(ctx: Ctx) -> Outcome | None:
    if hub_of(ctx) is None:
        ctx.say("ukey.not_available", options=[ctx.option("@human", "engine.nav_human")])
        return Finish(show_home=False)
    arg = str(ctx.get("_arg") or "")
    platform = services(ctx).platform
    params: dict[str, Any]
    try:
        if not arg:
            waiting = await platform.orders.list_orders(token(ctx), status="awaiting_ukey")
            if not waiting:
                ctx.say("ukey.nothing_waiting", options=[ctx.option("@go:my_seals", "seals.title")])
                return Finish(show_home=False)
            arg = waiting[0].id
        if arg.startswith(PIN_JOB_PREFIX):
            seal = await platform.seals.get(token(ctx), arg.removeprefix(PIN_JOB_PREFIX))
            job_type, params = "pin_change", {"key_serial": seal.key_serial}
        else:
            order = await platform.orders.get(token(ctx), arg)
            if order.status != "awaiting_ukey":
                ctx.say_text(order_status_text(ctx, order))
                ctx.say("ukey.no_step_now")
                return Finish()
            job = await platform.orders.ukey_job(token(ctx), order.id)
            seal = await platform.seals.get(token(ctx), job.seal_id)
            job_type = ORDER_JOB_TYPES[job.order_type]
            params = {"key_serial": job.key_serial, "order_id": order.id}
            if job_type in ("renewal", "change"):
                params["subject"] = {"country_name": "CN", "common_name": seal.holder_name}
                params["replaces_cert_sha256"] = await _replaces(ctx, seal)
            ctx.set("order_id", order.id)
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    if not seal.key_serial:
        ctx.say("ukey.no_key_on_record", options=[ctx.option("@human", "engine.nav_human")])
        return Finish(show_home=False)
    ctx.set("job_type", job_type)
    ctx.set("params", params)
    ctx.set("seal_id", seal.id)
    ctx.set("key_serial", seal.key_serial)
    return None


# ---- a bridge to run it --------------------------------------------------------------------------


async def _pairing_code(ctx: Ctx) -> None:
    code = await bridge_hub(ctx).create_pairing_code(account_id(ctx), conversation_ref=str(ctx.key))
    ctx.say(
        "ukey.pair_instructions",
        code=code.code,
        server=services(ctx).public_base_url,
        minutes=max(1, round((code.expires_at - ctx.now).total_seconds() / 60)),
    )


async def check_bridge(ctx: Ctx) -> Outcome | None:
    hub = bridge_hub(ctx)
    if await hub.is_online(account_id(ctx)):
        ctx.set("bridge", "online")
    elif await hub.list_devices(account_id(ctx)):
        ctx.set("bridge", "offline")
        ctx.say("ukey.start_bridge")
    else:
        ctx.set("bridge", "none")
        ctx.say("ukey.need_bridge")
        await _pairing_code(ctx)
    return None


def _for_account(ctx: Ctx, event: ExternalEvent, *kinds: str) -> bool:
    return (
        ctx.session is not None
        and event.type in {EVENT_PREFIX + k for k in kinds}
        and event.data.get("account_id") == ctx.session.account_id
    )


async def bridge_event(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    name = event.data.get("device_name") or "PC"
    if event.type == EVENT_PREFIX + "paired":
        ctx.set("bridge", "offline")
        ctx.say("ukey.paired_now_run", device=name)
        return Stay()
    ctx.say("ukey.bridge_online", device=name)
    return Next()


async def bridge_options(ctx: Ctx) -> Sequence[Option]:
    return [Option("new_code", ctx.t("ukey.new_code"))] if ctx.get("bridge") == "none" else []


async def bridge_option(ctx: Ctx, value: str) -> Outcome | None:
    if value == "new_code":
        await _pairing_code(ctx)
        return Stay()
    return None


async def bridge_message(ctx: Ctx, text: str) -> Outcome | None:
    if await bridge_hub(ctx).is_online(account_id(ctx)):
        ctx.say("ukey.bridge_online", device="PC")
        return Next()
    _warn_if_pin(ctx, text)
    return None  # the wait's status is said again


def _bridge_status(ctx: Ctx) -> dict[str, Any]:
    return {
        "state": ctx.t(f"ukey.bridge_state_{ctx.get('bridge', 'none')}"),
        "server": services(ctx).public_base_url,
    }


# ---- the job ----------------------------------------------------------------------------------


def _memory_key(ctx: Ctx) -> str:
    return str(ctx.get("order_id") or ctx.get("_arg"))


async def pick_pc(ctx: Ctx) -> Outcome | None:
    """Several online PCs report the seal's UKey: the user picks one (asked by the ``pc``
    choice) instead of the first one to connect taking the job."""
    pcs = await bridge_hub(ctx).pcs_for_key(account_id(ctx), ctx.get("key_serial"))
    ctx.set("pcs", [[device_id, name] for device_id, name in pcs] if len(pcs) > 1 else None)
    return None


async def pc_options(ctx: Ctx) -> Sequence[Option]:
    listed = [Option(str(device_id), str(name)) for device_id, name in ctx.get("pcs") or []]
    return [*listed, Option("any", ctx.t("ukey.pc_any"))]


def _chosen_pc(ctx: Ctx) -> str | None:
    chosen = ctx.get("pc")
    known = {str(device_id) for device_id, _name in ctx.get("pcs") or []}
    return str(chosen) if chosen in known else None


async def submit(ctx: Ctx) -> Outcome | None:
    hub = bridge_hub(ctx)
    jobs: dict[str, str] = ctx.memory.setdefault(JOBS_MEMORY, {})
    earlier = jobs.get(_memory_key(ctx))
    if earlier is not None:
        try:
            view = await hub.get_job(account_id(ctx), earlier)
        except UnknownJob:
            view = None
        if view is not None and view.status != "succeeded":
            # the same job again (a rerun finishes what an interrupted one started on the key)
            if view.status == "failed":
                await hub.retry_job(account_id(ctx), earlier)
            ctx.set("job_id", earlier)
            _explain(ctx)
            return None
    try:
        job_id = await hub.submit_job(
            account_id(ctx),
            ctx.get("job_type"),
            dict(ctx.get("params")),
            str(ctx.key),
            device_id=_chosen_pc(ctx),
        )
    except NoBridgePaired:
        return GoTo("check_bridge")
    jobs[_memory_key(ctx)] = job_id
    ctx.set("job_id", job_id)
    _explain(ctx)
    return None


def _explain(ctx: Ctx) -> None:
    ctx.say(f"ukey.explain_{ctx.get('job_type')}", serial=ctx.get("key_serial") or "-")
    ctx.say("ukey.pin_on_pc")


def _is_our_job(ctx: Ctx, event: ExternalEvent) -> bool:
    job_id = ctx.get("job_id")
    return job_id is not None and event.type.startswith(EVENT_PREFIX) and event.data.get("job_id") == job_id


async def job_event(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    kind = event.type.removeprefix(EVENT_PREFIX)
    data = event.data
    if kind != "job_succeeded" and ctx.get("told_failure") == _attempt_key(
        data.get("job_id"), data.get("attempt")
    ):
        # news of an attempt whose failure was told when the step was taken up again: old
        return Stay()
    if kind == "job_started":
        ctx.set("failure", None)
        ctx.say("ukey.job_sent", device=data.get("device_name") or "PC")
        return Stay()
    if kind == "job_stage":
        stage = data.get("stage")
        if stage == "awaiting_confirmation":
            ctx.say("ukey.stage_confirm")
        elif stage == "awaiting_pin":
            detail = dict(data.get("data") or {})
            ctx.say("ukey.stage_new_pin" if detail.get("pin") == "new_user" else "ukey.stage_pin")
            _warn_of_earlier_wrong_pins(ctx, detail)
        elif stage == "awaiting_certificate":
            ctx.say("ukey.stage_certificate")
        return Stay()
    if kind in ("job_failed", "job_interrupted"):
        _say_failure(ctx, data)
        await _offer_next(ctx)
        return Stay()
    if kind == "job_succeeded":
        ctx.set("result", dict(data.get("data") or {}))
        return Next()
    return Stay()  # job_queued: already explained when submitted


def _warn_of_earlier_wrong_pins(ctx: Ctx, detail: dict[str, Any]) -> None:
    """Warn only when the key itself reported wrong tries before this PIN entry.

    The bridge sends the key's flags (``wrong_pin_before``, ``final_try``, ``tries_left``) with
    a request for the current PIN. A new PIN (after an unlock) is never about earlier tries,
    whatever note the PC shows with it; a bridge too old to send the flags sends a ``warning``
    only when the key reported them, so that is read as such for the current PIN alone.
    """
    if detail.get("pin") != "user":
        return
    reported = detail.get("wrong_pin_before") if "wrong_pin_before" in detail else bool(detail.get("warning"))
    if not reported:
        return
    left = detail.get("tries_left")
    if detail.get("final_try") or left == 1:
        ctx.say("ukey.stage_pin_final_try")
    elif isinstance(left, int):
        ctx.say("ukey.stage_pin_warning_left", tries_left=left)
    else:
        ctx.say("ukey.stage_pin_warning")


def _say_failure(ctx: Ctx, data: dict[str, Any]) -> None:
    outcome = str(data.get("outcome") or "failed")
    ctx.set("failure", outcome)
    if outcome == "wrong_pin":
        left = data.get("tries_left")
        if data.get("final_try") or left == 1:
            ctx.say("ukey.fail_wrong_pin_final")
        elif left is not None:
            ctx.say("ukey.fail_wrong_pin", tries_left=left)
        else:
            ctx.say("ukey.fail_wrong_pin_unknown")
    elif outcome == "wrong_key":
        expected = (data.get("data") or {}).get("expected_serial") or ctx.get("key_serial")
        ctx.say("ukey.fail_wrong_key", serial=expected)
    elif outcome == "refused" or outcome == "issuance_failed":
        ctx.say(f"ukey.fail_{outcome}", reason=data.get("reason") or data.get("message") or "-")
    else:
        key = f"ukey.fail_{outcome}"
        ctx.say(key if ctx.t.catalog.has(key) else "ukey.fail_failed")
    if outcome in RETRYABLE:
        ctx.say("ukey.retry_hint")


async def job_options(ctx: Ctx) -> Sequence[Option]:
    failure = ctx.get("failure")
    options: list[Option] = []
    if failure in RETRYABLE:
        options.append(Option("retry", ctx.t("ukey.retry")))
    if failure == "pin_locked":
        options.append(ctx.option(f"@go:unlock:{ctx.get('seal_id')}", "unlock.title"))
    if failure in ("pin_locked", "so_pin_rejected", "failed"):
        options.append(ctx.option("@human", "engine.nav_human"))
    # always possible: a PC that never comes back must not hold the seal for ever
    options.append(Option("abandon", ctx.t("ukey.abandon")))
    return options


async def job_option(ctx: Ctx, value: str) -> Outcome | None:
    if value == "abandon":
        return await _abandon(ctx)
    if value == "retry" and ctx.get("failure") in RETRYABLE:
        try:
            await bridge_hub(ctx).retry_job(account_id(ctx), ctx.get("job_id"))
        except UnknownJob:
            return GoTo("submit")
        ctx.set("failure", None)
        ctx.say("ukey.retrying")
        ctx.say("ukey.pin_on_pc")
        return Stay()
    return None


async def _abandon(ctx: Ctx) -> Outcome:
    """Give the UKey step up: the job is dropped and a paid order is cancelled with a refund,
    so the seal is free for other business."""
    order_id = ctx.get("order_id")
    if order_id:
        try:
            await services(ctx).platform.orders.abandon_ukey_step(token(ctx), order_id)
        except PlatformClientError as exc:
            return await on_platform_error(ctx, exc)
    with_job = ctx.get("job_id")
    if with_job:
        with contextlib.suppress(UnknownJob):  # nothing left to drop
            await bridge_hub(ctx).abandon_job(account_id(ctx), with_job)
    ctx.say("ukey.abandoned_refund" if order_id else "ukey.abandoned")
    return Finish()


async def _offer_next(ctx: Ctx) -> None:
    """The wait's buttons under a pushed failure (a push does not repeat the wait's prompt), bound
    to this run's current prompt as the engine binds the buttons of a prompt."""
    run = ctx.run
    options = [
        o if o.token.startswith("@") else Option(bind(run.run_id, run.visit, o.token), o.label)
        for o in await job_options(ctx)
    ]
    options.append(ctx.option("@menu", "engine.nav_menu"))
    ctx.state.last_menu = [o.token for o in options]
    ctx.say("ukey.what_next", options=options)


def _warn_if_pin(ctx: Ctx, text: str) -> bool:
    if LOOKS_LIKE_PIN.match(text.strip()) and any(ch.isdigit() for ch in text):
        ctx.say("ukey.never_pin_in_chat")
        return True
    return False


async def job_message(ctx: Ctx, text: str) -> Outcome | None:
    _warn_if_pin(ctx, text)
    try:
        view = await bridge_hub(ctx).get_job(account_id(ctx), ctx.get("job_id"))
    except UnknownJob:
        return GoTo("submit")
    online = await bridge_hub(ctx).is_online(account_id(ctx))
    if view.status == "pending" and not online:
        ctx.say("ukey.waiting_for_bridge")
    elif view.status == "failed" and ctx.get("failure") is None:
        _say_failure(ctx, dict(view.result or {}))
    return None  # then the wait's status and its buttons again


def _job_status(ctx: Ctx) -> dict[str, Any]:
    return {"process": ctx.t(f"ukey.job_{ctx.get('job_type', 'renewal')}")}


# ---- done ------------------------------------------------------------------------------------


async def complete(ctx: Ctx) -> Outcome | None:
    job_type = ctx.get("job_type")
    result: dict[str, Any] = ctx.get("result") or {}
    if job_type == "pin_change":
        ctx.say("ukey.done_pin_change")
        return Finish()
    order_id = ctx.get("order_id")
    orders = services(ctx).platform.orders
    try:
        try:
            order = await orders.complete_ukey_job(
                token(ctx), order_id, key_serial=str(result.get("key_serial") or ctx.get("key_serial"))
            )
        except PlatformClientError as exc:
            # completed already (by the push when the user was elsewhere): that is success too
            order = await orders.get(token(ctx), order_id)
            if order.status != "completed":
                raise exc from None
    except PlatformClientError as exc:
        return await on_platform_error(ctx, exc)
    say_done(ctx, job_type, order.result, result, str(ctx.get("seal_id")))
    return Finish(show_home=False)


def say_done(
    ctx: Ctx, job_type: str, order_result: dict[str, Any], job_result: dict[str, Any], seal_id: str
) -> None:
    more = ctx.option("@go:my_seals", "seals.title")
    if job_type == "unlock":
        if job_result.get("pin_changed"):
            ctx.say("ukey.done_unlock_new_pin", options=[more])
        else:
            ctx.say(
                "ukey.done_unlock",
                pin=order_result.get("pin_reset_to") or RESET_PIN,
                options=[ctx.option(f"@go:pin_change:{seal_id}", "ukey.pin.title"), more],
            )
        return
    valid_to = order_result.get("valid_to")
    ctx.say(
        f"ukey.done_{job_type}",
        valid_to=local_date(datetime.fromisoformat(valid_to)) if valid_to else "-",
        options=[more],
    )


def _attempt_key(job_id: object, attempt: object) -> str:
    return f"{job_id}:{attempt}"


def _remember_told(ctx: Ctx, job_id: object) -> None:
    told: list[str] = ctx.memory.setdefault(TOLD_MEMORY, [])
    if job_id and str(job_id) not in told:
        told.append(str(job_id))
        del told[:-TOLD_KEPT]


async def resume_ukey_step(ctx: Ctx) -> Outcome | None:
    """``Flow.on_resume``: the job may have ended while this step was put aside (or kept as a
    draft, where no event reaches it), or its order may have moved on. The hub's record of the
    job and the platform's order decide, not the events the run happened to queue:

    - the job succeeded: the order is completed now (or was, by the push) and the step ends;
      the done message is said once: if the push said it already, one line says so;
    - the order no longer waits for a UKey step (given up, completed, cancelled): said, ended;
    - the job failed: its reason is said once, and the wait offers 重试 and 放弃办理;
    - otherwise the wait continues where it was.
    """
    hub = hub_of(ctx)
    if hub is None or ctx.session is None:
        return None
    job_id = ctx.get("job_id")
    view = None
    if job_id:
        try:
            view = await hub.get_job(account_id(ctx), job_id)
        except UnknownJob:
            view = None
    if view is not None and view.status == "succeeded":
        if str(job_id) in ctx.memory.get(TOLD_MEMORY, []):
            ctx.say("ukey.resume_done_already", **_job_status(ctx))
            return Finish()
        ctx.set("result", dict((view.result or {}).get("data") or {}))
        _remember_told(ctx, job_id)
        return await complete(ctx)
    order_id = ctx.get("order_id")
    if order_id:
        try:
            order = await services(ctx).platform.orders.get(token(ctx), order_id)
        except PlatformClientError as exc:
            return await on_platform_error(ctx, exc)
        if order.status != "awaiting_ukey":
            ctx.say_text(order_status_text(ctx, order))
            ctx.say("ukey.no_step_now")
            return Finish()
    if view is not None and view.status == "failed":
        told = _attempt_key(view.job_id, view.attempt)
        if ctx.get("told_failure") != told:
            _say_failure(ctx, dict(view.result or {}))
            ctx.set("told_failure", told)
    return None


async def job_finished_elsewhere(ctx: Ctx, event: ExternalEvent) -> None:
    """A job ended while its conversation was on another process: finish the order now and say so
    (the put-aside UKey step finds the order completed when the user goes back to it)."""
    if ctx.session is None:
        return
    data = event.data
    if event.type == EVENT_PREFIX + "job_failed":
        ctx.say("ukey.finished_elsewhere_failed", options=[ctx.option("@resume", "home.resume")])
        return
    order_id = data.get("order_id")
    job_result = dict(data.get("data") or {})
    if not order_id:
        if data.get("job_type") == "pin_change":
            ctx.say("ukey.done_pin_change")
            _remember_told(ctx, data.get("job_id"))
        return
    orders = services(ctx).platform.orders
    try:
        order = await orders.complete_ukey_job(
            token(ctx), order_id, key_serial=str(job_result.get("key_serial") or "")
        )
    except PlatformClientError:
        order = await orders.get(token(ctx), order_id)
        if order.status != "completed":
            ctx.say("ukey.finished_elsewhere_failed", options=[ctx.option("@resume", "home.resume")])
            return
    say_done(ctx, str(data.get("job_type")), order.result, job_result, str(order.seal_id))
    _remember_told(ctx, data.get("job_id"))


async def device_paired(ctx: Ctx, event: ExternalEvent) -> None:
    ctx.say("bridges.paired", device=event.data.get("device_name") or "PC")


UKEY = Flow(
    name="ukey",
    version=1,
    title="ukey.title",
    help="ukey.help",
    requires_login=True,
    on_resume=resume_ukey_step,
    steps=(
        Action("load", run=load_job),
        Action("check_bridge", run=check_bridge),
        Wait(
            "bridge",
            status="ukey.waiting_bridge",
            status_params=_bridge_status,
            when=lambda a: a.get("bridge") != "online",
            accepts=lambda ctx, e: _for_account(ctx, e, "paired", "online"),
            on_event=bridge_event,
            on_message=bridge_message,
            options=bridge_options,
            on_option=bridge_option,
            depends_on=("check_bridge",),
        ),
        Action("pick_pc", run=pick_pc),
        Choice(
            "pc",
            prompt="ukey.ask_pc",
            label="ukey.pc_label",
            options=pc_options,
            prompt_params=lambda ctx: {"count": len(ctx.get("pcs") or [])},
            when=lambda a: bool(a.get("pcs")),
            depends_on=("pick_pc",),
        ),
        Action("submit", run=submit),
        Wait(
            "job",
            sensitive=True,  # users type PINs here by mistake: never stored
            status="ukey.waiting_job",
            status_params=_job_status,
            accepts=_is_our_job,
            on_event=job_event,
            on_message=job_message,
            options=job_options,
            on_option=job_option,
            depends_on=("submit",),
        ),
        Action("complete", run=complete),
    ),
)

FLOWS = (UKEY,)

INTENTS = {
    "ukey": ("ukey操作", "写入ukey", "ukey步骤", "ukey step", "write to my ukey"),
}

EVENT_HANDLERS = {
    EVENT_PREFIX + "job_succeeded": job_finished_elsewhere,
    EVENT_PREFIX + "job_failed": job_finished_elsewhere,
    EVENT_PREFIX + "paired": device_paired,
}

__all__ = ["HUB_KEY", "PIN_JOB_PREFIX", "certificate_sha256_in_seal"]
