"""The password page over HTTP: ``GET``/``POST /secure/password?t=<link token>``.

The page is one small HTML form without scripts (mobile-first, the chat's colours). A random
``sealbot_page`` cookie identifies the browser: the first browser that submits owns the link,
and the CSRF token is a MAC of the link's nonce and that cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from bot.engine.i18n import Catalog
from bot.engine.messages import ConversationKey
from bot.secure_page.links import PAGE_PATH
from bot.secure_page.service import PageView, PasswordPages
from bot.security_headers import security_headers

BROWSER_COOKIE = "sealbot_page"
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_STYLE = """
:root { --red: #c8102e; --bg: #f4f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
  background: var(--bg); color: #222; }
header { background: var(--red); color: #fff; padding: 12px 16px; font-weight: 600; }
main { max-width: 420px; margin: 0 auto; padding: 16px; }
.card { background: #fff; border-radius: 12px; padding: 20px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h1 { font-size: 20px; margin: 0 0 8px; }
label { display: block; margin: 14px 0 4px; font-size: 14px; color: #555; }
input[type=password] { width: 100%; padding: 12px; font-size: 17px; border: 1px solid #ccc; border-radius: 8px; }
button { width: 100%; margin-top: 20px; padding: 13px; font-size: 17px; background: var(--red); color: #fff;
  border: 0; border-radius: 8px; }
.error { color: var(--red); margin: 10px 0 0; }
.muted { color: #777; font-size: 13px; margin-top: 14px; }
a { color: var(--red); }
"""


class PageRenderer:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def render(self, view: PageView, token: str) -> str:
        def t(key: str, **params: Any) -> str:
            return escape(self.catalog.get(view.locale, f"secure_page.{key}", **params))

        lang = "en" if view.locale == "en" else "zh-CN"
        if view.status == "form":
            title = t(f"title_{view.purpose}")
            confirm = (
                f'<label for="confirm">{t("confirm")}</label>'
                '<input id="confirm" name="confirm" type="password" autocomplete="new-password" required>'
                if view.purpose in {"register", "reset"}
                else ""
            )
            rules = f'<p class="muted">{t("rules")}</p>' if view.purpose in {"register", "reset"} else ""
            autocomplete = "current-password" if view.purpose == "login" else "new-password"
            error = f'<p class="error" role="alert">{escape(view.error)}</p>' if view.error else ""
            account = f"<p>{t('account', phone=view.phone_masked)}</p>" if view.phone_masked else ""
            body = (
                f"<h1>{title}</h1>{account}{error}"
                f'<form method="post" action="{PAGE_PATH}?t={escape(token)}">'
                f'<input type="hidden" name="csrf" value="{escape(view.csrf)}">'
                f'<label for="password">{t("password")}</label>'
                f'<input id="password" name="password" type="password" autocomplete="{autocomplete}" '
                f'maxlength="64" required autofocus>{confirm}{rules}'
                f'<button type="submit">{t(f"submit_{view.purpose}")}</button></form>'
                f'<p class="muted">{t("privacy")}</p>'
            )
        elif view.status == "done":
            title = t("done_title")
            body = f"<h1>{title}</h1><p>{t(f'done_{view.purpose}')}</p>"
        else:
            title = t("refused_title")
            reason = view.reason or "invalid"
            body = f"<h1>{title}</h1><p>{t(f'refused_{reason}')}</p>"
        return (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>{title}</title><style>{_STYLE}</style></head>"
            f'<body><header>{t("service")}</header><main><div class="card">{body}</div></main></body></html>'
        )


# Called when the page logged a conversation in, with the page's request and response (the web
# chat rotates its own cookie there: the page shares the browser with the chat).
AfterLogin = Callable[[Request, Response, ConversationKey], Awaitable[None]]


def password_page_router(
    pages: PasswordPages, *, https: bool, after_login: AfterLogin | None = None
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    renderer = PageRenderer(pages.engine.catalog)

    def respond(view: PageView, token: str, browser: str | None, status: int = 200) -> HTMLResponse:
        headers = {
            **security_headers(https=https, csp=PAGE_CSP, referrer="no-referrer"),
            "Cache-Control": "no-store",
        }
        if view.status == "refused":
            status = 403 if view.reason != "rate_limited" else 429
        response = HTMLResponse(renderer.render(view, token), status_code=status, headers=headers)
        if browser is not None:
            response.set_cookie(
                BROWSER_COOKIE, browser, httponly=True, secure=https, samesite="lax", path="/secure"
            )
        return response

    @router.get(PAGE_PATH, response_class=HTMLResponse)
    async def show(request: Request, t: str = "") -> HTMLResponse:
        browser = request.cookies.get(BROWSER_COOKIE)
        new_browser = None
        if not browser or len(browser) > 64:
            browser = new_browser = secrets.token_urlsafe(24)
        view = await pages.open(t[:1024], browser)
        return respond(view, t[:1024], new_browser)

    @router.post(PAGE_PATH, response_class=HTMLResponse)
    async def submit(
        request: Request,
        csrf: Annotated[str, Form(max_length=128)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        confirm: Annotated[str | None, Form(max_length=256)] = None,
        t: str = "",
    ) -> HTMLResponse:
        browser = request.cookies.get(BROWSER_COOKIE)
        if not browser or len(browser) > 64:
            return respond(PageView("refused", reason="cookies"), t[:1024], None)
        view = await pages.submit(
            t[:1024],
            browser,
            csrf=csrf,
            password=password,
            confirm=confirm,
            client=request.client.host if request.client else "unknown",
        )
        response = respond(view, t[:1024], None, status=400 if view.status == "form" else 200)
        if view.status == "done" and view.conversation is not None and after_login is not None:
            await after_login(request, response, view.conversation)
        return response

    return router
