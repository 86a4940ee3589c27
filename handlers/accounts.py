"""The account processes of the manual (1.2.2-1.2.4): register, log in, log out, real name.

Logging in binds this chat identity to the platform account (``ctx.login``); every later call
is made on behalf of that account with its token.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

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
    Outcome,
    StartFlow,
    Summary,
)
from bot.engine.messages import ExternalEvent, Option
from bot.engine.state import Session
from handlers.checks import platform_check
from handlers.menu import MenuItem
from handlers.next_steps import AFTER_LOGOUT, AFTER_REALNAME, after_login
from handlers.password_page import password_page
from handlers.platform_errors import explain
from handlers.services import services, token
from platform_client.errors import (
    InvalidInput,
    NotAuthenticated,
    PlatformClientError,
    RateLimited,
)
from platform_client.models import Session as PlatformSession
from platform_client.models import SmsPurpose

CODE_ERRORS = {"sms_code_wrong", "sms_code_expired", "sms_code_exhausted", "sms_code_not_found"}


def parse_code(text: str) -> str:
    code = re.sub(r"\s", "", text)
    if not re.fullmatch(r"\d{6}", code):
        raise Invalid("accounts.code_format")
    return code


def bind(ctx: Ctx, session: PlatformSession, phone: str, realname: bool = False) -> None:
    ctx.login(
        Session(account_id=session.account_id, token=session.token, phone=phone, realname_verified=realname)
    )


def bind_event(ctx: Ctx, event: ExternalEvent, phone: str) -> None:
    """Bind the session the password page obtained (the event carries it; never stored)."""
    ctx.login(
        Session(
            account_id=str(event.data["account_id"]),
            token=str(event.data["token"]),
            phone=phone,
            realname_verified=bool(event.data.get("realname")),
        )
    )


def masked_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else phone


def sms_identity(ctx: Ctx) -> str:
    """The chat user, as the platform's SMS abuse limits count it ("web:<session>" for the web
    chat, whose user id is its session)."""
    return f"{ctx.key.channel}:{ctx.key.user_id}"[:128]


def sms_client_ip(ctx: Ctx) -> str | None:
    """The web chat visitor's address, which the platform's per-IP SMS limit counts (other
    channels have none: their identity is the chat user)."""
    return ctx.inbound.client_ip if ctx.inbound is not None else None


# What a flow says and does when the platform refuses to send a code (not for a captcha).
SendRefused = Callable[[Ctx, PlatformClientError], Awaitable[Outcome | None]]


async def send_code(ctx: Ctx, purpose: SmsPurpose) -> Outcome | None:
    """Before a login: the code goes to the phone the user typed."""

    async def refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
        return _code_refused(ctx, exc)

    return await send_code_to(ctx, ctx.get("phone"), purpose, sent="accounts.code_sent", refused=refused)


async def send_code_to(
    ctx: Ctx,
    phone: str,
    purpose: SmsPurpose,
    *,
    sent: str,
    refused: SendRefused,
    account_token: str | None = None,
) -> Outcome | None:
    """A code of ``purpose`` to ``phone`` (``sent`` tells the user where); the platform's
    captcha is asked for when it wants one, any other refusal is ``refused``'s.
    ``account_token``: the code confirms something a logged-in account does."""
    captcha_token = ctx.get("captcha_token") or None
    try:
        await services(ctx).platform.accounts.send_sms_code(
            phone,
            purpose,
            token=account_token,
            identity=sms_identity(ctx),
            client_ip=sms_client_ip(ctx),
            captcha_token=captcha_token,
            captcha_answer=(ctx.get("captcha") or None) if captcha_token else None,
        )
    except PlatformClientError as exc:
        if exc.code in ("sms_captcha_required", "sms_captcha_wrong"):
            return await ask_captcha(ctx, exc)
        ctx.set("captcha_token", None)
        return await refused(ctx, exc)
    ctx.set("captcha_token", None)
    ctx.say(sent, phone=masked_phone(phone))
    dev_page = services(ctx).sms_dev_page
    if dev_page:
        ctx.say("accounts.code_dev_page", url=dev_page)
    return None


async def ask_captcha(ctx: Ctx, exc: PlatformClientError) -> Outcome:
    """The platform wants an image captcha solved before it sends another code (web chat)."""
    try:
        captcha = await services(ctx).platform.accounts.captcha()
    except PlatformClientError as failed:
        ctx.say_text(explain(ctx, failed))
        return GoTo("phone")
    image = await ctx.media.put(captcha.png, filename="captcha.png", content_type="image/png")
    ctx.set("captcha_token", captcha.token)
    if exc.code == "sms_captcha_wrong":
        ctx.say_text(explain(ctx, exc))
    ctx.image(image)
    return GoTo("captcha")


def _code_refused(ctx: Ctx, exc: PlatformClientError) -> Outcome | None:
    if isinstance(exc, RateLimited):
        ctx.say_text(explain(ctx, exc))
        return None  # a code sent moments ago is still valid: ask for it
    ctx.say_text(explain(ctx, exc))
    return GoTo("phone")


def captcha_step(*, when: Condition | None = None) -> Field:
    """Asked only after the platform wanted a captcha (``ask_captcha`` sets the token)."""

    def needed(answers: Answers) -> bool:
        return bool(answers.get("captcha_token")) and (when is None or when(answers))

    return Field(
        "captcha",
        prompt="accounts.ask_captcha",
        label="accounts.captcha",
        parse=lambda text: text.strip().upper(),
        max_length=8,
        when=needed,
    )


def on_code_error(ctx: Ctx, exc: PlatformClientError) -> Outcome:
    ctx.say_text(explain(ctx, exc))
    if exc.code == "sms_code_wrong":
        return GoTo("code")
    return GoTo("send_code")  # expired or used up: a new code is sent


def phone_field() -> Field:
    return Field(
        "phone",
        prompt="accounts.ask_phone",
        label="accounts.phone",
        check=platform_check("mobile", "accounts.phone_invalid"),
        sensitive=True,
        max_length=20,
    )


def code_field(when: Condition | None = None) -> Field:
    """The SMS code typed in the chat: sensitive, so it is never stored in clear."""
    return Field(
        "code",
        prompt="accounts.ask_code",
        label="accounts.code",
        parse=parse_code,
        sensitive=True,
        when=when,
        depends_on=("send_code",),
    )


# ---- register -----------------------------------------------------------------------------------


async def send_register_code(ctx: Ctx) -> Outcome | None:
    return await send_code(ctx, "register")


async def registered(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    """The page created the account and logged this chat in."""
    phone = ctx.get("phone")
    bind_event(ctx, event, phone)
    ctx.say("accounts.registered", phone=masked_phone(phone))
    if not ctx.state.stack:
        ctx.say("accounts.realname_next", options=[ctx.option("@go:realname", "accounts.realname_title")])
        return Finish(show_home=False)
    return None


REGISTER = Flow(
    name="register",
    version=2,  # v2: the password is set on the secure page, not in the chat
    title="accounts.register_title",
    help="accounts.register_help",
    steps=(
        phone_field(),
        captcha_step(),
        Action("send_code", run=send_register_code, depends_on=("phone", "captcha")),
        code_field(),
        password_page("password", "register", on_done=registered, depends_on=("phone", "code")),
    ),
)


# ---- log in -------------------------------------------------------------------------------------


async def send_login_code(ctx: Ctx) -> Outcome | None:
    return await send_code(ctx, "login")


async def log_in(ctx: Ctx) -> Outcome | None:
    """Login by SMS code, which stays in the chat (short-lived, single-use)."""
    platform = services(ctx).platform
    phone = ctx.get("phone")
    try:
        session = await platform.accounts.login_sms(phone, ctx.get("code"))
        account = await platform.accounts.me(session.token)
    except PlatformClientError as exc:
        if exc.code in CODE_ERRORS:
            return on_code_error(ctx, exc)
        ctx.say_text(explain(ctx, exc))
        if isinstance(exc, NotAuthenticated):
            return GoTo("phone")
        return Finish()
    bind(ctx, session, phone, realname=account.realname_status == "verified")
    return welcome_back(ctx, phone, verified=account.realname_status == "verified")


async def logged_in_on_page(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    phone = ctx.get("phone")
    bind_event(ctx, event, phone)
    return welcome_back(ctx, phone, verified=bool(event.data.get("realname")))


def welcome_back(ctx: Ctx, phone: str, *, verified: bool) -> Outcome | None:
    ctx.say("accounts.logged_in", phone=masked_phone(phone))
    if not verified and not ctx.state.stack:
        ctx.say("accounts.realname_next", options=[ctx.option("@go:realname", "accounts.realname_title")])
        return Finish(show_home=False)
    return None


LOGIN = Flow(
    name="login",
    version=2,  # v2: the password is typed on the secure page, not in the chat
    next_steps=after_login,
    title="accounts.login_title",
    help="accounts.login_help",
    steps=(
        phone_field(),
        Choice(
            "method",
            prompt="accounts.ask_login_method",
            label="accounts.login_method",
            options=(Option("password", "accounts.by_password"), Option("sms", "accounts.by_sms")),
        ),
        password_page(
            "password",
            "login",
            on_done=logged_in_on_page,
            when=lambda a: a.get("method") == "password",
            depends_on=("phone", "method"),
        ),
        captcha_step(when=lambda a: a.get("method") == "sms"),
        Action(
            "send_code",
            run=send_login_code,
            when=lambda a: a.get("method") == "sms",
            depends_on=("phone", "method", "captcha"),
        ),
        code_field(when=lambda a: a.get("method") == "sms"),
        Action(
            "login",
            run=log_in,
            when=lambda a: a.get("method") == "sms",
            depends_on=("phone", "method", "code"),
        ),
    ),
)


# ---- password reset: an SMS code in the chat, then the page ------------------------------------


async def phone_of_session(ctx: Ctx) -> Outcome | None:
    if ctx.session is not None and ctx.session.phone and ctx.get("phone") is None:
        ctx.set("phone", ctx.session.phone)
    return None


async def send_reset_code(ctx: Ctx) -> Outcome | None:
    return await send_code(ctx, "reset_password")


async def password_was_reset(ctx: Ctx, event: ExternalEvent) -> Outcome | None:
    phone = ctx.get("phone")
    bind_event(ctx, event, phone)
    ctx.say("accounts.password_reset_done", phone=masked_phone(phone))
    return None


RESET_PASSWORD = Flow(
    name="reset_password",
    version=1,
    next_steps=after_login,  # the reset logs the chat in
    title="accounts.reset_title",
    help="accounts.reset_help",
    steps=(
        Action("known_phone", run=phone_of_session),
        phone_field(),
        captcha_step(),
        Action("send_code", run=send_reset_code, depends_on=("phone", "captcha")),
        code_field(),
        password_page("password", "reset", on_done=password_was_reset, depends_on=("phone", "code")),
    ),
)


# ---- log out ------------------------------------------------------------------------------------


async def _end_session(ctx: Ctx, *, everywhere: bool) -> Outcome | None:
    """End this chat's session, or (``everywhere``) every session of the account; other chats
    notice at their next step (their token is refused) and ask to log in again."""
    if ctx.session is None:
        ctx.say("accounts.not_logged_in")
        return None
    accounts = services(ctx).platform.accounts
    try:
        await (accounts.logout_everywhere if everywhere else accounts.logout)(token(ctx))
    except NotAuthenticated:
        pass  # the token had expired already: the chat is unbound all the same
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    ctx.logout()
    ctx.say("accounts.logged_out_everywhere" if everywhere else "accounts.logged_out")
    return None


async def log_out(ctx: Ctx) -> Outcome | None:
    return await _end_session(ctx, everywhere=False)


async def log_out_everywhere(ctx: Ctx) -> Outcome | None:
    return await _end_session(ctx, everywhere=True)


LOGOUT = Flow(
    name="logout",
    version=1,
    title="accounts.logout_title",
    steps=(Action("logout", run=log_out),),
    next_steps=AFTER_LOGOUT,
)


LOGOUT_EVERYWHERE = Flow(
    name="logout_everywhere",
    version=1,
    title="accounts.logout_everywhere_title",
    next_steps=AFTER_LOGOUT,
    steps=(Action("logout", run=log_out_everywhere),),
)


# ---- real-name verification ---------------------------------------------------------------------


async def verify(ctx: Ctx) -> Outcome | None:
    try:
        account = await services(ctx).platform.accounts.verify_realname(
            token(ctx), name=ctx.get("name"), id_number=ctx.get("id_number")
        )
    except NotAuthenticated:
        ctx.logout()
        ctx.say("accounts.session_expired")
        return StartFlow("login")
    except InvalidInput as exc:
        ctx.say_text(explain(ctx, exc))
        return GoTo("id_number" if exc.code.startswith("invalid_id") else "name")
    except PlatformClientError as exc:
        ctx.say_text(explain(ctx, exc))
        return Finish()
    if ctx.session is not None:
        ctx.session.realname_verified = True
    ctx.say("accounts.realname_done", name=account.real_name or ctx.get("name"))
    return None


async def skip_if_verified(ctx: Ctx) -> Outcome | None:
    if ctx.session is not None and ctx.session.realname_verified:
        ctx.say("accounts.realname_already")
        return Finish()
    return None


REALNAME = Flow(
    name="realname",
    version=1,
    next_steps=AFTER_REALNAME,
    title="accounts.realname_title",
    help="accounts.realname_help",
    requires_login=True,
    steps=(
        Action("already", run=skip_if_verified),
        Field(
            "name",
            prompt="accounts.ask_real_name",
            label="accounts.real_name",
            check=platform_check("person_name", "accounts.name_invalid"),
            max_length=30,
        ),
        Field(
            "id_number",
            prompt="accounts.ask_id_number",
            label="accounts.id_number",
            check=platform_check("resident_id", "accounts.id_invalid"),
            sensitive=True,
            max_length=30,
        ),
        Summary("confirm", title="accounts.realname_confirm"),
        Action("verify", run=verify, depends_on=("name", "id_number")),
    ),
)

FLOWS = (REGISTER, LOGIN, RESET_PASSWORD, LOGOUT, LOGOUT_EVERYWHERE, REALNAME)

MENU = (
    MenuItem("register", "accounts.register_title", visible=lambda ctx: not ctx.logged_in),
    MenuItem("login", "accounts.login_title", visible=lambda ctx: not ctx.logged_in),
    MenuItem("reset_password", "accounts.reset_title", visible=lambda ctx: not ctx.logged_in, order=80),
    MenuItem(
        "realname",
        "accounts.realname_title",
        visible=lambda ctx: ctx.session is not None and not ctx.session.realname_verified,
    ),
    MenuItem("logout", "accounts.logout_title", visible=lambda ctx: ctx.logged_in, order=90),
)

INTENTS = {
    "register": ("注册", "开户", "注册账号", "sign up", "register", "create account"),
    "login": ("登录", "登陆", "登入", "log in", "login", "sign in"),
    # "忘记密码" / "修改密码" alone mean the UKey PIN (FAQ, PIN change): here the login password.
    "reset_password": (
        "忘记登录密码",
        "重置登录密码",
        "找回登录密码",
        "修改登录密码",
        "重置密码",
        "forgot password",
        "reset password",
    ),
    "logout_everywhere": (
        "退出所有设备",
        "所有设备退出",
        "全部退出登录",
        "log out everywhere",
        "sign out everywhere",
    ),
    "logout": ("退出登录", "登出", "log out", "logout", "sign out"),
    "realname": ("实名", "实名认证", "认证身份", "real name", "verify identity", "identity verification"),
}
