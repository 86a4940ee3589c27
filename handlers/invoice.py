"""Invoice (开发票, manual 1.3.1): pick a paid order, give the invoice title, tax number and email,
confirm; the e-invoice PDF arrives in the chat when finance issues it (``invoice.issued``).

Title, tax number and email are remembered in the conversation's memory and offered next time
with one tap. ``@go:invoice:<order id>`` (from My orders) skips the choice of the order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.engine.context import Ctx
from bot.engine.flow import Action, Choice, Field, Finish, Flow, Invalid, Outcome, Summary
from bot.engine.messages import ExternalEvent, FileRef, Option
from handlers.checks import platform_check
from handlers.menu import MenuItem
from handlers.next_steps import AFTER_INVOICE
from handlers.order_words import event_order_number, money, order_number, seen_order, session_lost, type_words
from handlers.payment import PAID_STATUSES
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import InvalidInput, NotAuthenticated, PlatformClientError

REMEMBERED = "invoice_details"  # memory[REMEMBERED]: the title, tax number and email used last
NO_TAX_NUMBER = "none"
NO_TAX_WORDS = frozenset({"无", "没有", "个人", "none", "no", "-", "n/a", NO_TAX_NUMBER})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

check_credit_code = platform_check("credit_code", "checks.invalid_credit_code")


async def load(ctx: Ctx) -> Outcome | None:
    """The paid orders without an invoice; a preselected one (``_arg``) must be among them."""
    try:
        orders = await services(ctx).platform.orders.list_orders(token(ctx))
        invoiced = {i.order_id for i in await services(ctx).platform.invoices.list_invoices(token(ctx))}
        # An e-mail address is asked for only when the platform mails invoices.
        ctx.set("mail_on", "yes" if await services(ctx).platform.invoices.options() else "no")
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    open_orders = [
        o for o in orders if o.status in PAID_STATUSES and o.amount_fen > 0 and o.id not in invoiced
    ]
    if not open_orders:
        ctx.say("invoice.none")
        return Finish()
    choices = [
        [
            o.id,
            ctx.t(
                "invoice.order_item",
                order=seen_order(ctx, o.id, o.code),
                process=type_words(ctx, o.type),
                amount=money(o.amount_fen),
            ),
        ]
        for o in open_orders
    ]
    ctx.set("_orders", choices)
    wanted = ctx.get("_arg")
    if wanted:
        picked = next((c for c in choices if c[0] == wanted), None)
        if picked is None:
            ctx.say("invoice.not_this_order", order=order_number(ctx, str(wanted)))
        else:
            ctx.set("order", picked[0])
            ctx.set("_label.order", picked[1])
    return None


async def order_options(ctx: Ctx) -> Sequence[Option]:
    return [Option(order_id, label) for order_id, label in ctx.get("_orders", [])]


def _remembered(ctx: Ctx) -> dict[str, Any]:
    value = ctx.memory.get(REMEMBERED)
    return dict(value) if isinstance(value, dict) else {}


async def title_suggestions(ctx: Ctx) -> Sequence[Option]:
    title = _remembered(ctx).get("title")
    return [Option(str(title), str(title))] if title else []


def parse_title(text: str) -> str:
    title = " ".join(text.split())
    if not 2 <= len(title) <= 100:
        raise Invalid("invoice.title_invalid")
    return title


async def tax_suggestions(ctx: Ctx) -> Sequence[Option]:
    options = []
    remembered = _remembered(ctx).get("tax_number")
    if remembered:
        options.append(Option(str(remembered), str(remembered)))
    options.append(Option(NO_TAX_NUMBER, ctx.t("invoice.no_tax_number")))
    return options


async def check_tax_number(ctx: Ctx, value: Any) -> str:
    """A company's tax number is its unified social credit code; a person has none."""
    if str(value).strip().lower() in NO_TAX_WORDS:
        return ""
    return await check_credit_code(ctx, value)


def show_tax_number(value: Any) -> str:
    return str(value) if value else "—"


async def email_suggestions(ctx: Ctx) -> Sequence[Option]:
    email = _remembered(ctx).get("email")
    return [Option(str(email), str(email))] if email else []


def parse_email(text: str) -> str:
    email = text.strip()
    if not EMAIL.fullmatch(email) or len(email) > 200:
        raise Invalid("invoice.email_invalid")
    return email


async def request(ctx: Ctx) -> Outcome | None:
    details = {
        "title": ctx.get("title"),
        "tax_number": ctx.get("tax_number") or None,
        "email": ctx.get("email") if ctx.get("mail_on") == "yes" else None,
    }
    try:
        invoice = await services(ctx).platform.invoices.request(
            token(ctx),
            ctx.get("order"),
            title=details["title"],
            email=details["email"],
            tax_number=details["tax_number"],
        )
    except NotAuthenticated:
        return session_lost(ctx)
    except InvalidInput as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    ctx.memory[REMEMBERED] = {
        **dict(ctx.memory.get(REMEMBERED) or {}),
        **{k: v for k, v in details.items() if v},
    }
    order, amount = seen_order(ctx, invoice.order_id, invoice.order_code), money(invoice.amount_fen)
    if invoice.email:
        ctx.say("invoice.requested_email", order=order, amount=amount, email=invoice.email)
    else:
        ctx.say("invoice.requested", order=order, amount=amount)
    return None


INVOICE = Flow(
    name="invoice",
    version=1,
    next_steps=AFTER_INVOICE,
    title="invoice.title",
    help="invoice.help",
    requires_login=True,
    steps=(
        Action("load", run=load),
        Choice("order", prompt="invoice.ask_order", label="invoice.order", options=order_options),
        Field(
            "title",
            prompt="invoice.ask_title",
            label="invoice.invoice_title",
            parse=parse_title,
            suggestions=title_suggestions,
            max_length=100,
        ),
        Field(
            "tax_number",
            prompt="invoice.ask_tax_number",
            label="invoice.tax_number",
            check=check_tax_number,
            display=show_tax_number,
            suggestions=tax_suggestions,
            max_length=40,
        ),
        Field(
            "email",
            prompt="invoice.ask_email",
            label="invoice.email",
            parse=parse_email,
            suggestions=email_suggestions,
            max_length=200,
            when=lambda answers: answers.get("mail_on") == "yes",
        ),
        Summary("confirm", title="invoice.summary_title"),
        Action("request", run=request, depends_on=("order", "title", "tax_number", "email")),
    ),
)


async def invoice_file(ctx: Ctx, invoice_id: str, number: str) -> FileRef:
    """The e-invoice PDF, fetched from the platform into the media store (raises the client's
    errors)."""
    pdf = await services(ctx).platform.invoices.pdf(token(ctx), invoice_id)
    return await ctx.media.put(
        pdf, filename=f"invoice-{number or invoice_id[:8]}.pdf", content_type="application/pdf"
    )


async def on_issued(ctx: Ctx, event: ExternalEvent) -> None:
    """The e-invoice is issued: fetch the PDF and send it as a file."""
    invoice_id = str(event.data.get("invoice_id", ""))
    order = event_order_number(ctx, event)
    number = str(event.data.get("invoice_number", ""))
    emailed = str(event.data.get("emailed_to") or "")
    # Mail is mentioned only when the platform says it mailed the invoice.
    suffix = "_email" if emailed else ""
    if ctx.session is None:
        ctx.say("invoice.issued_log_in" + suffix, order=order, number=number, email=emailed)
        return
    try:
        file = await invoice_file(ctx, invoice_id, number)
    except PlatformClientError:
        ctx.say("invoice.issued_no_file" + suffix, order=order, number=number, email=emailed)
        return
    ctx.say("invoice.issued" + suffix, order=order, number=number, email=emailed)
    ctx.document(file, caption=ctx.t("invoice.file_caption", number=number))


async def send_again(ctx: Ctx) -> Outcome | None:
    """``@go:invoice_pdf:<invoice id>`` (from the order's detail): the issued PDF once more."""
    try:
        invoice = await services(ctx).platform.invoices.get(token(ctx), str(ctx.get("_arg", "")))
        if invoice.status != "issued":
            ctx.say("invoice.not_issued_yet", order=seen_order(ctx, invoice.order_id, invoice.order_code))
            return Finish()
        file = await invoice_file(ctx, invoice.id, invoice.invoice_number or "")
    except NotAuthenticated:
        return session_lost(ctx)
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    number = invoice.invoice_number or ""
    ctx.document(file, caption=ctx.t("invoice.file_caption", number=number))
    return None


INVOICE_PDF = Flow(
    name="invoice_pdf",
    version=1,
    title="invoice.pdf_title",
    requires_login=True,
    next_steps=AFTER_INVOICE,
    steps=(Action("send", run=send_again),),
)

FLOWS = (INVOICE, INVOICE_PDF)

MENU = (MenuItem("invoice", "invoice.title", visible=lambda ctx: ctx.logged_in, order=35),)

INTENTS = {
    "invoice": (
        "开发票",
        "开票",
        "申请发票",
        "要发票",
        "电子发票",
        "invoice",
        "get an invoice",
        "request an invoice",
        "fapiao",
    ),
}

EVENT_HANDLERS = {"invoice.issued": on_issued}
