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
from bot.engine.flow import Action, Finish, Flow, Outcome, Step
from handlers.accounts import captcha_step
from handlers.confirm_steps import code_field, code_refused, code_sender, confirm_steps
from handlers.menu import MenuItem
from handlers.order_words import status_words, type_words
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import NotAuthenticated, PlatformClientError, RateLimited
from platform_client.models import SmsPurpose


def _lost(ctx: Ctx) -> Outcome:
    ctx.logout()
    ctx.say("accounts.session_expired")
    return Finish()


async def _send_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
    if isinstance(exc, NotAuthenticated):
        return _lost(ctx)
    ctx.say_text(explain(ctx, exc))
    # rate limited: a code sent moments ago may still work, so it is asked for
    return None if isinstance(exc, RateLimited) else Finish()


def _code_steps(purpose: SmsPurpose) -> tuple[Step, ...]:
    return (
        captcha_step(),
        code_sender(purpose, sent="my_data.code_sent", refused=_send_refused),
        code_field(prompt="my_data.ask_code", label="my_data.code"),
    )


def _code_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
    return code_refused(ctx, exc, wrong="my_data.code_wrong", expired="my_data.code_expired")


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
        *_code_steps("export_data"),
        Action("export", run=export, depends_on=("code",)),
    ),
)


# ---- 注销账号 -------------------------------------------------------------------------------


def _blocker_line(ctx: Ctx, kind: str, type_: str, status: str) -> str:
    if kind == "seal":
        return ctx.t(
            "my_data.blocker_seal", kind=ctx.t(f"seals.kind_{type_}"), status=ctx.t(f"seals.status_{status}")
        )
    return ctx.t("my_data.blocker_order", type=type_words(ctx, type_), status=status_words(ctx, status))


def _blocked(ctx: Ctx, blockers: list[tuple[str, str, str]]) -> Outcome:
    """Deletion refused: what stands in the way (kind, type, status of each) and what to do."""
    lines = [_blocker_line(ctx, *blocker) for blocker in blockers]
    ctx.say("my_data.delete_blocked", blockers="\n".join(lines))
    return Finish()


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
        return _blocked(ctx, [(b.kind, b.type, b.status) for b in preview.blockers])
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
            return _blocked(ctx, [(b["kind"], b["type"], b["status"]) for b in blockers])
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
        *confirm_steps(
            prompt="my_data.ask_delete",
            label="my_data.delete_label",
            yes="my_data.delete_yes",
            no="my_data.delete_no",
            kept="my_data.delete_kept",
            prompt_params=lambda ctx: {"kept": ctx.get("kept_text", "")},
        ),
        *_code_steps("delete_account"),
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
