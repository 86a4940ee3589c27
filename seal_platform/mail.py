"""E-mail through the operator's SMTP server (``aiosmtplib``): issued invoices go to the address
the applicant gave, status notices to the address of an account that opted in (``notices``),
expiry reminders to the account's own address (``api_reminders``). Without
``PLATFORM_SMTP_HOST`` nothing is mailed, and no message to the user mentions e-mail
(``invoice.issued`` carries ``emailed_to`` only when a mail was queued).

Nothing here is sent inside a transaction: the issuing transaction queues the message in the
outbox (``mail_outbox``) and it is rendered and handed to the server after the commit. A
reminder is sent at once, with no session held, because the reminder job records what the
server answered."""

from __future__ import annotations

from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import TYPE_CHECKING

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform import mail_outbox
from seal_platform.documents import Document
from seal_platform.invoicing import IssuedFile, IssuedInvoice
from seal_platform.mail_outbox import mail_enabled
from seal_platform.settings import PlatformSettings

if TYPE_CHECKING:
    from seal_platform.services import PlatformServices

__all__ = [
    "INVOICE_MAIL",
    "invoice_message",
    "mail_enabled",
    "queue_invoice_mail",
    "render_invoice",
    "send_mail",
]

INVOICE_MAIL = "invoice"


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


def queue_invoice_mail(
    session: AsyncSession,
    settings: PlatformSettings,
    *,
    now: datetime,
    account_id: str,
    to: str,
    issued: IssuedInvoice,
    documents: list[Document],
) -> bool:
    """Queue the invoice's e-mail in the issuing transaction; ``False`` when mail is off or the
    applicant gave no address (then no message to the user mentions e-mail)."""
    if not mail_enabled(settings) or not to:
        return False
    mail_outbox.queue(
        session,
        kind=INVOICE_MAIL,
        now=now,
        account_id=account_id,
        recipient=to,
        payload={
            "number": issued.number,
            "issued_on": issued.issued_on.isoformat(),
            "documents": [document.id for document in documents],
        },
    )
    return True


async def render_invoice(services: PlatformServices, mail: mail_outbox.QueuedMail) -> EmailMessage | None:
    """The outbox renderer of invoice mails: the stored files, read back after the commit."""
    settings = services.settings
    if not mail_enabled(settings):
        return None
    async with services.db.session() as session:
        documents = [await session.get(Document, document_id) for document_id in mail.payload["documents"]]
    files = [
        IssuedFile(document.filename, document.content_type, await services.blob_store.get(document.sha256))
        for document in documents
        if document is not None
    ]
    issued = IssuedInvoice(str(mail.payload["number"]), date.fromisoformat(mail.payload["issued_on"]), files)
    return invoice_message(settings, mail.recipient, issued)
