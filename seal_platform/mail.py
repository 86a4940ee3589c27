"""E-mail through the operator's SMTP server (``aiosmtplib``): issued invoices and expiry
reminders go to the address the applicant gave. Without ``PLATFORM_SMTP_HOST`` nothing is
mailed, and no message to the user mentions e-mail (``invoice.issued`` carries ``emailed_to``
only when a mail was accepted)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import TYPE_CHECKING

import aiosmtplib

from seal_platform.settings import PlatformSettings

if TYPE_CHECKING:
    from seal_platform.invoices import InvoiceRecord
    from seal_platform.invoicing import IssuedInvoice
    from seal_platform.services import PlatformServices

log = logging.getLogger(__name__)


def mail_enabled(settings: PlatformSettings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


async def send_mail(settings: PlatformSettings, message: EmailMessage) -> None:
    """Hand the message to the SMTP server, or raise ``aiosmtplib.SMTPException`` / ``OSError``."""
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user or None,
        password=settings.smtp_password.get_secret_value() or None,
        use_tls=settings.smtp_security == "ssl",
        start_tls=settings.smtp_security == "starttls",
        timeout=settings.smtp_timeout_seconds,
    )


def reminder_message(settings: PlatformSettings, to: str, subject: str, text: str) -> EmailMessage:
    """An expiry reminder written by the bot, from the operator's address."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((settings.operator_service_name, settings.smtp_from))
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    message.set_content(text, charset="utf-8")
    return message


def invoice_message(settings: PlatformSettings, to: str, issued: IssuedInvoice) -> EmailMessage:
    service = settings.operator_service_name
    message = EmailMessage()
    message["Subject"] = f"【{service}】电子发票 {issued.number}"
    message["From"] = formataddr((service, settings.smtp_from))
    message["To"] = to
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    lines = [
        "您好：",
        "",
        f"您在{service}申请的电子发票已开具，发票号码 {issued.number}，开票日期 {issued.issued_on:%Y-%m-%d}。",
        "发票文件见附件。",
    ]
    if settings.operator_hotline:
        lines.append(f"如有疑问请致电 {settings.operator_hotline}。")
    lines += ["", settings.operator_company or service]
    message.set_content("\n".join(lines))
    for file in issued.files:
        maintype, subtype = file.content_type.split("/", 1)
        message.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.filename)
    return message


async def email_invoice(services: PlatformServices, invoice: InvoiceRecord, issued: IssuedInvoice) -> bool:
    """Mail the invoice files; ``False`` when mail is off or the server refused (the chat still
    delivers the invoice, so a mail failure never undoes the issue)."""
    settings = services.settings
    if not mail_enabled(settings) or not invoice.email:
        return False
    try:
        await send_mail(settings, invoice_message(settings, invoice.email, issued))
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("invoice %s not e-mailed: %s", invoice.id, type(exc).__name__)
        return False
    return True
