"""The new-seal applications of the manual (1.2.5) as one flow builder, shared by both seals.

The enterprise seal (企业公章), the legal representative's seal (法人章) and both as one order
(bundle) ask the same things in the same order; ``application_flow(kind)`` declares the steps
once and the kind decides which scans are asked and which order type is created:

  real-name gate -> (bundle or not) -> company, credit code, legal representative, ID, phone
  -> scans (licence / ID card front and back), each handed to the platform as soon as received
  -> validity years with prices -> a draft order (the impression form needs its number)
  -> the pre-filled 印模采集表 PDF(s) -> the stamped scan(s) back -> mailing address
  -> summary -> submit -> payment wait -> offer the other seal with the known data filled in.

The draft is created with ``ctx.idempotency_key``, and the submission first reads the order's
status, so a redelivered message or a retried step never makes a second order or a second move.
Platform refusals of order, document and invoice calls are put in
plain words (``handlers.platform_errors.explain``).
"""

# Over 600 lines: the steps both seal applications share (company, legal representative,
# scans, the impression form, mailing, one seal of a kind, data on file); each flow module stays
# short because this one holds them.

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from bot.engine.context import Ctx
from bot.engine.flow import (
    Action,
    Answers,
    Choice,
    Condition,
    Field,
    Finish,
    Flow,
    GoTo,
    Invalid,
    OptionSource,
    Outcome,
    StartFlow,
    Step,
    StepResult,
    Summary,
    Upload,
)
from bot.engine.messages import FileRef, Option
from handlers.checks import platform_check
from handlers.next_steps import AFTER_ORDER
from handlers.order_words import money, order_number, seen_order, session_lost, status_words, type_words
from handlers.payment import is_paid, payment_steps
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.documents import UploadKind
from platform_client.errors import NotAuthenticated, PlatformClientError
from platform_client.orders import Order

SealKind = Literal["enterprise", "personal"]

# Scope of the enterprise application: only the company seal, or both seals as one order.
SCOPE_ENTERPRISE = "enterprise"
SCOPE_BUNDLE = "bundle"

# Order document roles (the platform's names) and the upload kind each one takes.
ROLE_UPLOAD_KIND: dict[str, UploadKind] = {
    "business_licence": "business_licence",
    "id_card_front": "id_card_front",
    "id_card_back": "id_card_back",
    "impression_form_enterprise": "impression_form",
    "impression_form_personal": "impression_form",
}

# Upload step name -> the order document role it fills.
UPLOAD_ROLES: dict[str, str] = {
    "licence": "business_licence",
    "id_front": "id_card_front",
    "id_back": "id_card_back",
    "form_enterprise": "impression_form_enterprise",
    "form_personal": "impression_form_personal",
}

# The seals each new-seal order type makes.
SEAL_KINDS_OF: dict[str, tuple[SealKind, ...]] = {
    "enterprise_seal": ("enterprise",),
    "personal_seal": ("personal",),
    "bundle": ("enterprise", "personal"),
}

COMPANY_FIELDS = ("company_name", "uscc", "legal_rep_name", "legal_rep_id")
ADDRESS_FIELDS = ("recipient", "recipient_phone", "region", "street")
# Answers carried to the other seal's application when it is offered after payment.
CARRIED_FIELDS = (*COMPANY_FIELDS, "contact_phone", *ADDRESS_FIELDS)

# The summary card's sections (企业信息 / 法定代表人 / 材料 / 邮寄).
SUMMARY_GROUPS = (
    ("apply.group_company", ("scope", "company_name", "uscc", "contact_phone", "years")),
    ("apply.group_legal_rep", ("legal_rep_name", "legal_rep_id")),
    ("apply.group_materials", ("licence", "id_front", "id_back", "form_enterprise", "form_personal")),
    ("apply.group_mailing", ADDRESS_FIELDS),
)

StepCode = Callable[[Ctx], StepResult]  # what an Action runs

ORDER_ID = "order_id"  # answers[ORDER_ID]: the draft (then submitted) order of this run
DOC_PREFIX = "_doc."  # answers["_doc.<upload step>"]: the platform document id of that scan
FORM_PRINT = "_form_fingerprint"  # what the last impression form sent was made from
DRAFT_SEQ = "_draft_seq"  # how many drafts this run needed (a new one when the type changes)
DRAFT_PRINT = "_draft_fingerprint"  # the company data the draft was last given
STALE_FORMS = "_stale_forms"  # stamped scans of forms that were replaced, to be asked again


# ---- platform refusals in plain words ----------------------------------------------------------


# ---- one seal of each kind per company -------------------------------------------------------

SECOND_SEAL_CODES = frozenset({"seal_exists", "seal_order_open"})
# New-seal orders still on their way to a seal (the platform's rule counts the same ones).
PENDING_NEW_SEAL = frozenset(
    {"awaiting_payment", "paid", "under_review", "rejected", "resubmitted", "approved"}
)


async def refuse_second_seal(ctx: Ctx, code: str, details: Mapping[str, Any]) -> Outcome:
    """The company has this seal already (or an order for it): say so in one line and offer
    what can be done with the existing seal or order instead of a dead end."""
    from handlers.my_seals import processes_for  # my_seals builds on this module

    platform = services(ctx).platform
    options: list[Option] = []
    if code == "seal_exists" and details.get("seal_id"):
        try:
            seal = await platform.seals.get(token(ctx), str(details["seal_id"]))
        except PlatformClientError:
            seal = None
        if seal is not None:
            ctx.say(
                "apply.seal_exists",
                kind=ctx.t(f"seals.kind_{seal.kind}"),
                holder=seal.holder_name,
                status=ctx.t(f"seals.status_{seal.status}"),
                options=[*processes_for(ctx, seal, None), ctx.option("@go:my_seals", "seals.title")],
            )
            return Finish(show_home=False)
    if code == "seal_order_open" and details.get("order_id"):
        order_id = str(details["order_id"])
        if details.get("status") == "awaiting_payment":
            options.append(ctx.option(f"@go:pay_order:{order_id}", "orders.do_pay"))
        options.append(ctx.option("@go:my_orders", "orders.title"))
        ctx.say(
            "apply.seal_order_open",
            order=seen_order(ctx, order_id, details.get("order_code")),
            status=status_words(ctx, str(details.get("status", ""))),
            options=options,
        )
        return Finish(show_home=False)
    # Another account holds it: nothing of theirs is named; a person can sort it out.
    ctx.say("apply.seal_elsewhere", options=[ctx.option("@human", "engine.nav_human")])
    return Finish(show_home=False)


def seal_on_record(kind: SealKind) -> StepCode:
    async def run(ctx: Ctx) -> Outcome | None:
        """Right after the credit code: this account's own live seal or pending order of a kind
        this application makes, for the same company, ends it before anything else is asked
        (the platform refuses the order later anyway, for any account)."""
        platform = services(ctx).platform
        kinds = set(seal_kinds(order_type(kind, ctx.answers)))
        uscc = ctx.get("uscc")
        try:
            seals = await platform.seals.list_seals(token(ctx))
            orders = await platform.orders.list_orders(token(ctx))
            companies: dict[str, str] = {}

            async def uscc_of(company_id: str) -> str:
                if company_id not in companies:
                    companies[company_id] = (await platform.seals.company(token(ctx), company_id)).uscc
                return companies[company_id]

            for seal in seals:
                if (
                    seal.kind in kinds
                    and seal.status != "cancelled"
                    and await uscc_of(seal.company_id) == uscc
                ):
                    return await refuse_second_seal(ctx, "seal_exists", {"seal_id": seal.id})
            for order in orders:
                if (
                    order.status in PENDING_NEW_SEAL
                    and kinds & set(seal_kinds(order.type))
                    and order.type in SEAL_KINDS_OF
                    and order.company_id
                    and await uscc_of(order.company_id) == uscc
                ):
                    details = {"order_id": order.id, "order_code": order.code, "status": order.status}
                    return await refuse_second_seal(ctx, "seal_order_open", details)
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            ctx.say_text(explain(ctx, exc))
            return Finish()
        return None

    return run


# ---- what is on file: 使用上次的信息 ----------------------------------------------------------------

ON_FILE = "_on_file"  # answers[ON_FILE]: the earlier order whose data can be used again


async def find_on_file(ctx: Ctx) -> Outcome | None:
    """The latest submitted new-seal order of this account, when this run has no company data
    yet (the other seal offered after payment comes with it): offered as 使用上次的信息."""
    if ctx.get("company_name") is not None:
        return None
    platform = services(ctx).platform
    try:
        orders = await platform.orders.list_orders(token(ctx))
        earlier = next(
            (
                o
                for o in sorted(orders, key=lambda o: o.created_at, reverse=True)
                if o.type in SEAL_KINDS_OF and o.status != "draft" and o.company_id and o.mailing_address
            ),
            None,
        )
        if earlier is None or earlier.company_id is None:
            return None
        company = await platform.seals.company(token(ctx), earlier.company_id)
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError:
        return None  # a convenience: without it the questions are simply asked
    address = earlier.mailing_address or {}
    ctx.set(
        ON_FILE, {"order_id": earlier.id, "company": company.name, "recipient": address.get("recipient", "")}
    )
    return None


async def use_on_file(ctx: Ctx) -> Outcome | None:
    """使用上次的信息: the company, its legal representative's name and the mailing address of
    the earlier order are filled in (the ID number is asked again: the platform keeps it sealed)."""
    if ctx.get("reuse") != "yes":
        return None
    platform = services(ctx).platform
    try:
        earlier = await platform.orders.get(token(ctx), ctx.get(ON_FILE)["order_id"])
        company = await platform.seals.company(token(ctx), str(earlier.company_id))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return None
    address = earlier.mailing_address or {}
    ctx.set("company_name", company.name)
    ctx.set("uscc", company.uscc)
    ctx.set("legal_rep_name", company.legal_rep_name)
    if address.get("recipient"):
        ctx.set("recipient", address["recipient"])
        ctx.set("recipient_phone", address.get("phone", ""))
        ctx.set("region", {k: address.get(k, "") for k in ("province", "city", "district")})
        ctx.set("street", address.get("address", ""))
    ctx.say("apply.reused", company=company.name)
    return None


def _on_file_params(ctx: Ctx) -> Mapping[str, Any]:
    found = ctx.get(ON_FILE) or {}
    return {"company": found.get("company", ""), "recipient": found.get("recipient", "")}


# ---- parsers of what applicants type -------------------------------------------------------------


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def parse_company_name(text: str) -> str:
    name = _tidy(text)
    if not 2 <= len(name) <= 100 or name.isdigit():
        raise Invalid("apply.company_name_invalid")
    return name


def parse_region(text: str) -> dict[str, str]:
    """省 市 区 as typed: "广东省 广州市 天河区", "广东省广州市天河区" or "北京市 朝阳区"."""
    cleaned = _tidy(text)
    parts = [p for p in re.split(r"[\s,，、/]+", cleaned) if p]
    if len(parts) == 1:
        found = re.fullmatch(
            r"(.+?(?:省|自治区|特别行政区|北京市|上海市|天津市|重庆市))(.+?(?:市|自治州|地区|盟))?(.+?(?:区|县|市|旗))?",
            parts[0],
        )
        if found is None:
            raise Invalid("apply.region_invalid")
        parts = [g for g in found.groups() if g]
    if len(parts) == 2:
        province, rest = parts
        municipality = province.rstrip("市") in {"北京", "上海", "天津", "重庆"} or province.lower() in {
            "beijing",
            "shanghai",
            "tianjin",
            "chongqing",
        }
        parts = [province, province, rest] if municipality else [province, rest, ""]
    if len(parts) != 3 or any(len(p) < 2 for p in parts[:2]) or (parts[2] and len(parts[2]) < 2):
        raise Invalid("apply.region_invalid")
    province, city, district = parts
    return {"province": province, "city": city, "district": district}


def show_region(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(str(value[k]) for k in ("province", "city", "district") if value.get(k))
    return str(value)


def parse_street(text: str) -> str:
    street = _tidy(text)
    if not 4 <= len(street) <= 200:
        raise Invalid("apply.street_invalid")
    return street


# ---- the applicant's identity ---------------------------------------------------------------------


async def realname_gate(ctx: Ctx) -> Outcome | None:
    """Seals are issued to real-name verified applicants: check with the platform (the chat's
    flag may be stale when verification happened in another chat) and send them there first."""
    session = ctx.session
    if session is None:
        return StartFlow("login", resume=True)
    if session.realname_verified:
        return None
    try:
        account = await services(ctx).platform.accounts.me(token(ctx))
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if account.realname_status == "verified":
        session.realname_verified = True
        return None
    ctx.say("apply.realname_first")
    return StartFlow("realname", resume=True)


async def phone_suggestions(ctx: Ctx) -> Sequence[Option]:
    phones: list[str] = []
    for phone in (ctx.get("contact_phone"), ctx.session.phone if ctx.session else None):
        if phone and phone not in phones:
            phones.append(str(phone))
    return [Option(p, ctx.t("apply.use_phone", phone=p)) for p in phones]


async def name_suggestions(ctx: Ctx) -> Sequence[Option]:
    name = ctx.get("legal_rep_name")
    return [Option(str(name), ctx.t("apply.use_name", name=name))] if name else []


# ---- scans ----------------------------------------------------------------------------------------


def store_scan(step: str) -> Action:
    """The Action after an Upload: hand the scan to the platform under its role's kind. A refusal
    (unsupported type, too large, corrupt image) is explained and the upload asked again."""
    kind = ROLE_UPLOAD_KIND[UPLOAD_ROLES[step]]

    async def run(ctx: Ctx) -> Outcome | None:
        files = ctx.get(step) or []
        if not files:
            return GoTo(step)
        file = FileRef.from_dict(files[0])
        data = await ctx.media.get(file.media_id)
        try:
            document = await services(ctx).platform.documents.upload(
                token(ctx), kind, data, filename=file.filename, content_type=file.content_type
            )
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            ctx.say_text(explain(ctx, exc))
            return GoTo(step)
        ctx.set(DOC_PREFIX + step, document.id)
        ctx.say("apply.scan_received")
        return None

    return Action(f"{step}_stored", run=run, depends_on=(step,))


# ---- years and prices -----------------------------------------------------------------------------


def order_type(kind: SealKind, answers: Answers) -> str:
    if kind == "personal":
        return "personal_seal"
    return "bundle" if answers.get("scope") == SCOPE_BUNDLE else "enterprise_seal"


def seal_kinds(order_type_name: str) -> tuple[SealKind, ...]:
    return SEAL_KINDS_OF.get(order_type_name, ("enterprise", "personal"))


def years_options(kind: SealKind) -> OptionSource:
    async def options(ctx: Ctx) -> Sequence[Option]:
        prices = await services(ctx).platform.orders.prices()
        kinds = seal_kinds(order_type(kind, ctx.answers))
        per_year = sum(prices.per_year_fen.get(k, 0) for k in kinds)
        return [
            Option(str(years), ctx.t("apply.years_option", years=years, price=money(per_year * years)))
            for years in prices.validity_years_options
        ]

    return options


# ---- the draft order and its impression forms -----------------------------------------------------


def company_body(ctx: Ctx) -> dict[str, str]:
    return {
        "name": ctx.get("company_name"),
        "uscc": ctx.get("uscc"),
        "legal_rep_name": ctx.get("legal_rep_name"),
        "legal_rep_id": ctx.get("legal_rep_id"),
    }


def make_draft(kind: SealKind) -> StepCode:
    async def run(ctx: Ctx) -> Outcome | None:
        """Create the draft the impression form is printed for, or bring the existing one up to
        date. A changed order type (bundle or not) needs a new order: the old draft is dropped."""
        orders = services(ctx).platform.orders
        wanted = order_type(kind, ctx.answers)
        years = int(ctx.get("years"))
        try:
            existing = await _current_draft(ctx)
            if existing is not None and existing.type == wanted:
                if existing.years != years or ctx.get(DRAFT_PRINT) != _company_fingerprint(ctx):
                    await orders.update(
                        token(ctx), existing.id, {"company": company_body(ctx), "years": years}
                    )
                ctx.set(DRAFT_PRINT, _company_fingerprint(ctx))
                return None
            if existing is not None:
                await orders.cancel(token(ctx), existing.id)
                ctx.set(DRAFT_SEQ, int(ctx.get(DRAFT_SEQ, 0)) + 1)
            body = {"type": wanted, "company": company_body(ctx), "years": years}
            order = await orders.create(
                token(ctx), body, idempotency_key=ctx.idempotency_key(f"draft:{ctx.get(DRAFT_SEQ, 0)}")
            )
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            if exc.code in SECOND_SEAL_CODES:
                return await refuse_second_seal(ctx, exc.code, exc.details or {})
            ctx.say_text(explain(ctx, exc))
            if exc.code == "realname_required":
                return StartFlow("realname", resume=True)
            if exc.code.startswith(("invalid_credit_code", "invalid_uscc")):
                return GoTo("uscc")
            if exc.code.startswith("invalid_id"):
                return GoTo("legal_rep_id")
            return Finish()
        ctx.set(ORDER_ID, order.id)
        seen_order(ctx, order.id, order.code)
        ctx.set(DRAFT_PRINT, _company_fingerprint(ctx))
        return None

    return run


async def _current_draft(ctx: Ctx) -> Order | None:
    order_id = ctx.get(ORDER_ID)
    if not order_id:
        return None
    order = await services(ctx).platform.orders.get(token(ctx), order_id)
    return order if order.status == "draft" else None


async def sync_years(ctx: Ctx) -> Outcome | None:
    """Years changed from the summary: the draft's price follows."""
    order_id = ctx.get(ORDER_ID)
    if not order_id:
        return None
    try:
        order = await services(ctx).platform.orders.get(token(ctx), order_id)
        if order.status == "draft" and order.years != int(ctx.get("years")):
            await services(ctx).platform.orders.update(token(ctx), order_id, {"years": int(ctx.get("years"))})
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return GoTo("years")
    return None


def _fingerprint(data: Mapping[str, Any]) -> str:
    """A digest to compare answers with, so that the ID number is never kept twice in state."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def _company_fingerprint(ctx: Ctx) -> str:
    return _fingerprint(company_body(ctx))


def _form_fingerprint(ctx: Ctx, kinds: Sequence[str]) -> str:
    return _fingerprint({**company_body(ctx), "kinds": list(kinds), "order": ctx.get(ORDER_ID)})


def send_forms(kind: SealKind) -> StepCode:
    async def run(ctx: Ctx) -> Outcome | None:
        """Send the pre-filled 印模采集表 of each seal of the order, unless the same ones were sent
        already; new forms make any stamped scan of the old ones void."""
        order_id = ctx.get(ORDER_ID)
        if not order_id:
            return GoTo("draft")
        kinds = seal_kinds(order_type(kind, ctx.answers))
        fingerprint = _form_fingerprint(ctx, kinds)
        if ctx.get(FORM_PRINT) == fingerprint:
            # Each stamped scan of a replaced form is asked again, one per run of this step.
            stale = list(ctx.get(STALE_FORMS, []))
            if stale:
                ctx.set(STALE_FORMS, stale[1:])
                return GoTo(stale[0])
            return None
        for seal_kind in kinds:
            try:
                pdf = await services(ctx).platform.documents.impression_form(
                    token(ctx), order_id, seal_kind=seal_kind
                )
            except NotAuthenticated:
                return session_lost(ctx)
            except PlatformClientError as exc:
                ctx.say_text(explain(ctx, exc))
                return Finish()
            file = await ctx.media.put(
                pdf,
                filename=f"impression-form-{seal_kind}-{order_number(ctx, order_id)}.pdf",
                content_type="application/pdf",
            )
            ctx.document(file, caption=ctx.t(f"apply.form_caption_{seal_kind}"))
        ctx.say("apply.form_instructions")
        stale = [f"form_{k}" for k in ("enterprise", "personal") if ctx.get(f"form_{k}")]
        ctx.set(FORM_PRINT, fingerprint)
        if stale:
            ctx.say("apply.form_changed")
            ctx.set(STALE_FORMS, stale[1:])
            return GoTo(stale[0])
        return None

    return run


# ---- submission -----------------------------------------------------------------------------------


def mailing_address(ctx: Ctx) -> dict[str, str]:
    region = ctx.get("region") or {}
    return {
        "recipient": ctx.get("recipient"),
        "phone": ctx.get("recipient_phone"),
        "province": region.get("province", ""),
        "city": region.get("city", ""),
        "district": region.get("district", ""),
        "address": ctx.get("street"),
    }


def upload_steps_of(order_type_name: str) -> tuple[str, ...]:
    steps: list[str] = []
    kinds = seal_kinds(order_type_name)
    if "enterprise" in kinds:
        steps.append("licence")
    if "personal" in kinds:
        steps += ["id_front", "id_back"]
    steps += [f"form_{k}" for k in kinds]
    return tuple(steps)


def submit(kind: SealKind) -> StepCode:
    async def run(ctx: Ctx) -> Outcome | None:
        """Attach scans and address to the draft and submit it for payment, once: a repeated run
        (redelivery, retry after a crash) finds the order submitted and goes on to payment."""
        order_id = ctx.get(ORDER_ID)
        if not order_id:
            return GoTo("draft")
        wanted = upload_steps_of(order_type(kind, ctx.answers))
        missing = [s for s in wanted if not ctx.get(DOC_PREFIX + s)]
        if missing:
            return GoTo(missing[0])
        orders = services(ctx).platform.orders
        try:
            order = await orders.get(token(ctx), order_id)
            if order.status == "draft":
                documents = {UPLOAD_ROLES[s]: ctx.get(DOC_PREFIX + s) for s in wanted}
                await orders.update(
                    token(ctx), order_id, {"documents": documents, "mailing_address": mailing_address(ctx)}
                )
                order = await orders.submit(token(ctx), order_id)
        except NotAuthenticated:
            return session_lost(ctx)
        except PlatformClientError as exc:
            ctx.say_text(explain(ctx, exc))
            return _step_to_fix(exc)
        ctx.say(
            "apply.submitted",
            order=seen_order(ctx, order.id, order.code),
            process=type_words(ctx, order.type),
            amount=money(order.amount_fen),
        )
        return None

    return run


def _step_to_fix(exc: PlatformClientError) -> Outcome:
    """Where a refused submission sends the user: the answer the platform found wrong."""
    details = exc.details or {}
    if exc.code in {"documents_missing", "document_not_found", "document_kind_mismatch"}:
        roles = details.get("roles") or [details.get("role")]
        by_role = {role: step for step, role in UPLOAD_ROLES.items()}
        for role in roles:
            if role in by_role:
                return GoTo(by_role[role])
    if exc.code in {"address_missing", "invalid_mobile"}:
        return GoTo("recipient_phone" if exc.code == "invalid_mobile" else "region")
    if exc.code in {"invalid_name_length", "invalid_name_chars"}:
        return GoTo("recipient")
    return Finish()


# ---- after payment: offer the other seal ----------------------------------------------------------


def carried(ctx: Ctx) -> dict[str, Any]:
    return {name: ctx.get(name) for name in CARRIED_FIELDS if ctx.get(name) is not None}


def offer_other(kind: SealKind) -> StepCode:
    other = "personal" if kind == "enterprise" else "enterprise"

    async def run(ctx: Ctx) -> Outcome | None:
        if ctx.get("next") != "other":
            ctx.say("apply.see_you")
            return None
        prefill = carried(ctx)
        if other == "enterprise":
            prefill.update({"scope": SCOPE_ENTERPRISE, "_label.scope": ctx.t("apply.scope_enterprise")})
        return StartFlow(f"apply_{other}", prefill=prefill)

    return run


def _wants_other(kind: SealKind) -> Condition:
    def applies(answers: Answers) -> bool:
        # A bundle made both seals already.
        return is_paid(answers) and not (kind == "enterprise" and answers.get("scope") == SCOPE_BUNDLE)

    return applies


# ---- the flow -------------------------------------------------------------------------------------


def _upload(name: str, prompt: str, label: str, when: Condition | None = None) -> tuple[Step, ...]:
    return (Upload(name, prompt=prompt, label=label, when=when), _when(store_scan(name), when))


def _when(action: Action, when: Condition | None) -> Action:
    return Action(action.name, run=action.run, when=when, depends_on=action.dependencies)


def application_flow(kind: SealKind) -> Flow:
    """The application for a new ``kind`` seal (the enterprise one may be a bundle of both)."""

    def makes(seal: SealKind) -> Condition:
        return lambda answers: seal in seal_kinds(order_type(kind, answers))

    steps: list[Step] = [Action("realname_gate", run=realname_gate)]
    if kind == "enterprise":
        steps.append(
            Choice(
                "scope",
                prompt="apply.ask_scope",
                label="apply.scope",
                options=(
                    Option(SCOPE_ENTERPRISE, "apply.scope_enterprise"),
                    Option(SCOPE_BUNDLE, "apply.scope_bundle"),
                ),
            )
        )
    steps += [
        Action("on_file", run=find_on_file),
        Choice(
            "reuse",
            prompt="apply.ask_reuse",
            label="apply.reuse",
            options=(Option("yes", "apply.reuse_yes"), Option("no", "apply.reuse_no")),
            prompt_params=_on_file_params,
            when=lambda answers: bool(answers.get(ON_FILE)),
        ),
        Action("use_on_file", run=use_on_file, depends_on=("reuse",)),
        Field(
            "company_name",
            prompt="apply.ask_company_name",
            label="apply.company_name",
            parse=parse_company_name,
            max_length=100,
        ),
        Field(
            "uscc",
            prompt="apply.ask_uscc",
            label="apply.uscc",
            check=platform_check("credit_code", "checks.invalid_credit_code"),
            max_length=40,
        ),
        Action(
            "on_record",
            run=seal_on_record(kind),
            depends_on=("uscc", *(("scope",) if kind == "enterprise" else ())),
        ),
        Field(
            "legal_rep_name",
            prompt="apply.ask_legal_rep_name",
            label="apply.legal_rep_name",
            check=platform_check("person_name", "checks.invalid_name_chars"),
            max_length=30,
        ),
        Field(
            "legal_rep_id",
            prompt="apply.ask_legal_rep_id",
            label="apply.legal_rep_id",
            check=platform_check("resident_id", "checks.invalid_id_format"),
            sensitive=True,
            max_length=30,
        ),
        Field(
            "contact_phone",
            prompt="apply.ask_contact_phone",
            label="apply.contact_phone",
            check=platform_check("mobile", "checks.invalid_mobile"),
            suggestions=phone_suggestions,
            sensitive=True,
            max_length=20,
        ),
        *_upload("licence", "apply.ask_licence", "apply.licence", when=makes("enterprise")),
        *_upload("id_front", "apply.ask_id_front", "apply.id_front", when=makes("personal")),
        *_upload("id_back", "apply.ask_id_back", "apply.id_back", when=makes("personal")),
        Choice("years", prompt="apply.ask_years", label="apply.years", options=years_options(kind)),
        Action(
            "draft",
            run=make_draft(kind),
            depends_on=(*COMPANY_FIELDS, *(("scope",) if kind == "enterprise" else ())),
        ),
        Action("sync_years", run=sync_years, depends_on=("years",)),
        Action("forms", run=send_forms(kind), depends_on=("draft",)),
        *_upload(
            "form_enterprise", "apply.ask_form_enterprise", "apply.form_enterprise", when=makes("enterprise")
        ),
        *_upload("form_personal", "apply.ask_form_personal", "apply.form_personal", when=makes("personal")),
        Field(
            "recipient",
            prompt="apply.ask_recipient",
            label="apply.recipient",
            check=platform_check("person_name", "checks.invalid_name_chars"),
            suggestions=name_suggestions,
            max_length=30,
        ),
        Field(
            "recipient_phone",
            prompt="apply.ask_recipient_phone",
            label="apply.recipient_phone",
            check=platform_check("mobile", "checks.invalid_mobile"),
            suggestions=phone_suggestions,
            sensitive=True,
            max_length=20,
        ),
        Field(
            "region",
            prompt="apply.ask_region",
            label="apply.region",
            parse=parse_region,
            display=show_region,
            max_length=60,
        ),
        Field("street", prompt="apply.ask_street", label="apply.street", parse=parse_street, max_length=200),
        Summary("confirm", title="apply.summary_title", groups=SUMMARY_GROUPS),
        Action("submit", run=submit(kind), depends_on=("confirm",)),
        *payment_steps("pay"),
        Choice(
            "next",
            prompt=f"apply.ask_next_{kind}",
            label="apply.next",
            options=(Option("other", f"apply.next_other_{kind}"), Option("later", "apply.next_later")),
            when=_wants_other(kind),
        ),
        Action("offer_other", run=offer_other(kind), when=_wants_other(kind)),
        Action("bundle_done", run=_bundle_done, when=lambda a: is_paid(a) and not _wants_other(kind)(a)),
    ]
    return Flow(
        name=f"apply_{kind}",
        version=1,
        title=f"apply.title_{kind}",
        help=f"apply.help_{kind}",
        requires_login=True,
        next_steps=AFTER_ORDER,
        steps=tuple(steps),
    )


async def _bundle_done(ctx: Ctx) -> Outcome | None:
    ctx.say("apply.see_you")
    return None
