"""The user's rights from the chat (PIPL): 导出我的信息 (a copy of everything held, as a ZIP) and
注销账号 (delete the account), each confirmed with an SMS code sent to the account's phone.

The ZIP is sent as a file of this conversation: the web chat serves it only to the browser of
this conversation, a messenger only to this user. It is kept for ``export_ttl`` (24 h at most),
not for the retention of other chat files: after that the download is refused and the file
deleted. Deletion is first checked with the platform:
while a seal is live or an order is open it is refused with what stands in the way and what
to do; otherwise the user is told what the law makes us keep (pseudonymised) before they
confirm. After the deletion the bot forgets what its own stores hold of the account (chat
messages, delivered replies), and every login of the account ends.
"""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, Flow, GoTo, Outcome
from bot.engine.messages import Option
from handlers.accounts import (
    ask_captcha,
    captcha_step,
    masked_phone,
    parse_code,
    sms_client_ip,
    sms_identity,
)
from handlers.menu import MenuItem
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError, RateLimited
from platform_client.models import SmsPurpose

RESEND = {"sms_code_expired", "sms_code_exhausted", "sms_code_not_found", "sms_code_missing"}


def _lost(ctx: Ctx) -> Outcome:
    ctx.logout()
    ctx.say("accounts.session_expired")
    return Finish()


def _code_sender(purpose: SmsPurpose) -> Action:
    async def send_code(ctx: Ctx) -> Outcome | None:
        session = ctx.session
        assert session is not None
        captcha_token = ctx.get("captcha_token") or None
        try:
            await services(ctx).platform.accounts.send_sms_code(
                session.phone,
                purpose,
                token=token(ctx),
                identity=sms_identity(ctx),
                client_ip=sms_client_ip(ctx),
                captcha_token=captcha_token,
                captcha_answer=(ctx.get("captcha") or None) if captcha_token else None,
            )
        except NotAuthenticated:
            return _lost(ctx)
        except PlatformClientError as exc:
            if exc.code in ("sms_captcha_required", "sms_captcha_wrong"):
                return await ask_captcha(ctx, exc)
            ctx.set("captcha_token", None)
            if isinstance(exc, RateLimited):
                # a code sent moments ago may still work: ask for it
                ctx.say_text(explain(ctx, exc))
                return None
            ctx.say_text(explain(ctx, exc))
            return Finish()
        ctx.set("captcha_token", None)
        ctx.say("my_data.code_sent", phone=masked_phone(session.phone))
        dev_page = services(ctx).sms_dev_page
        if dev_page:
            ctx.say("accounts.code_dev_page", url=dev_page)
        return None

    return Action("send_code", run=send_code, depends_on=("captcha",))


def _code_field() -> Field:
    return Field(
        "code",
        prompt="my_data.ask_code",
        label="my_data.code",
        parse=parse_code,
        sensitive=True,
        depends_on=("send_code",),
    )


def _code_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
    """A wrong code is asked again; a spent or expired one is replaced by a new one."""
    if exc.code == "sms_code_wrong":
        ctx.say("my_data.code_wrong", attempts_left=exc.details.get("attempts_left", "-"))
        return GoTo("code")
    if exc.code in RESEND:
        ctx.say("my_data.code_expired")
        return GoTo("send_code")
    return None


# ---- 导出我的信息 ---------------------------------------------------------------------------


async def export(ctx: Ctx) -> Outcome | None:
    try:
        archive = await services(ctx).platform.accounts.export_my_data(token(ctx), ctx.get("code"))
    except NotAuthenticated:
        return _lost(ctx)
    except PlatformClientError as exc:
        again = _code_refused(ctx, exc)
        if again is not None:
            return again
        ctx.say_text(explain(ctx, exc))
        return Finish()
    file = await ctx.media.put(
        archive,
        filename="my-data.zip",
        content_type="application/zip",
        expires_at=ctx.now + services(ctx).export_ttl,
    )
    ctx.say("my_data.export_ready", hours=int(services(ctx).export_ttl.total_seconds() // 3600))
    ctx.document(file, caption=ctx.t("my_data.export_caption"))
    return None


EXPORT = Flow(
    name="export_my_data",
    version=1,
    title="my_data.export_title",
    help="my_data.export_help",
    requires_login=True,
    steps=(
        captcha_step(),
        _code_sender("export_data"),
        _code_field(),
        Action("export", run=export, depends_on=("code",)),
    ),
)


# ---- 注销账号 -------------------------------------------------------------------------------


def _blocker_line(ctx: Ctx, kind: str, type_: str, status: str) -> str:
    if kind == "seal":
        return ctx.t(
            "my_data.blocker_seal", kind=ctx.t(f"seals.kind_{type_}"), status=ctx.t(f"seals.status_{status}")
        )
    return ctx.t(
        "my_data.blocker_order", type=ctx.t(f"orders.type.{type_}"), status=ctx.t(f"orders.status.{status}")
    )


async def check_deletion(ctx: Ctx) -> Outcome | None:
    """Refuse at once while something is in progress; otherwise say what would be kept."""
    try:
        preview = await services(ctx).platform.accounts.deletion_preview(token(ctx))
    except NotAuthenticated:
        return _lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if preview.blockers:
        lines = [_blocker_line(ctx, b.kind, b.type, b.status) for b in preview.blockers]
        ctx.say("my_data.delete_blocked", blockers="\n".join(lines))
        return Finish()
    ctx.set(
        "kept_text",
        ctx.t(
            "my_data.delete_keeps",
            orders=preview.kept_orders,
            invoices=preview.kept_invoices,
            certificates=preview.kept_certificates,
            documents=preview.documents,
        ),
    )
    return None


async def confirmed(ctx: Ctx) -> Outcome | None:
    if ctx.get("go") != "yes":
        ctx.say("my_data.delete_kept")
        return Finish()
    return None


async def delete(ctx: Ctx) -> Outcome | None:
    session = ctx.session
    assert session is not None
    try:
        await services(ctx).platform.accounts.delete_account(token(ctx), ctx.get("code"))
    except NotAuthenticated:
        return _lost(ctx)
    except PlatformClientError as exc:
        again = _code_refused(ctx, exc)
        if again is not None:
            return again
        if exc.code == "account_deletion_blocked":
            # something started meanwhile (another chat): nothing was deleted
            blockers = exc.details.get("blockers") or []
            lines = [_blocker_line(ctx, b["kind"], b["type"], b["status"]) for b in blockers]
            ctx.say("my_data.delete_blocked", blockers="\n".join(lines))
            return Finish()
        ctx.say_text(explain(ctx, exc))
        return Finish()
    forget = services(ctx).forget_account
    if forget is not None:
        await forget(session.account_id, ctx.key)
    ctx.logout()
    ctx.memory.clear()
    ctx.say("my_data.deleted")
    return None


DELETE = Flow(
    name="delete_account",
    version=1,
    title="my_data.delete_title",
    help="my_data.delete_help",
    requires_login=True,
    steps=(
        Action("check", run=check_deletion),
        Choice(
            "go",
            prompt="my_data.ask_delete",
            label="my_data.delete_label",
            options=(Option("yes", "my_data.delete_yes"), Option("no", "my_data.delete_no")),
            prompt_params=lambda ctx: {"kept": ctx.get("kept_text", "")},
        ),
        Action("confirmed", run=confirmed, depends_on=("go",)),
        captcha_step(),
        _code_sender("delete_account"),
        _code_field(),
        Action("delete", run=delete, depends_on=("code",)),
    ),
)

FLOWS = (EXPORT, DELETE)

MENU = (
    MenuItem("export_my_data", "my_data.export_title", visible=lambda ctx: ctx.logged_in, order=86),
    MenuItem("delete_account", "my_data.delete_title", visible=lambda ctx: ctx.logged_in, order=87),
)

INTENTS = {
    "export_my_data": ("导出我的信息", "导出个人信息", "下载我的数据", "export my data", "download my data"),
    "delete_account": ("注销账号", "注销我的账号", "删除账号", "delete my account", "close my account"),
}
