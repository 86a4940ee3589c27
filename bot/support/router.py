"""The support inbox pages under ``/support``: server-rendered HTML, a little plain JavaScript
(no build step), Server-Sent Events for live updates, cookie sessions with CSRF tokens."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.engine.media import sniff
from bot.engine.messages import ConversationKey
from bot.engine.ports import MediaStore
from bot.support import audit
from bot.support.auth import (
    ConsoleSession,
    ConsoleSessions,
    StaffAuthenticator,
    StaffDirectoryUnavailable,
    StaffLoginRefused,
)
from bot.support.conversation_view import build_view, transcript_of, uploaded_media
from bot.support.labels import AUDIT_ACTIONS, TICKET_STATES, StaffWords, owner_label
from bot.support.models import SupportTicket, TicketState
from bot.support.records import CustomerRecords, CustomerRecordsView
from bot.support.service import AlreadyClaimed, DeskError, SupportDesk

SESSION_COOKIE = "sealbot_support"
LOGIN_COOKIE = "sealbot_support_login"
TEMPLATES = Path(__file__).parent / "templates"
SSE_STREAM_SECONDS = 55.0  # the browser reconnects by itself; short streams never pin a worker
SSE_KEEPALIVE_SECONDS = 10.0
KEY_PATTERN = re.compile(r"^[a-z0-9_]{1,32}:[^:/\s]{1,64}:[^/\s]{1,128}$")

ERRORS = {
    "already_claimed": "该会话已被其他客服接入。",
    "not_your_conversation": "该会话不在您名下，无法执行此操作。",
    "no_open_ticket": "该会话当前没有待处理的客服工单。",
    "unknown_conversation": "找不到该会话。",
    "unknown_canned_answer": "找不到该快捷回复。",
    "empty_reply": "请输入回复内容、选择快捷回复或上传文件。",
    "file_too_large": "文件过大。",
    "bad_credentials": "用户名或密码错误。",
    "no_support_role": "该账号没有客服权限。",
    "locked": "登录失败次数过多，请稍后再试。",
    "directory_unavailable": "暂时无法验证账号，请稍后再试。",
    "expired_form": "页面已过期，请重试。",
}
WHO = {"user": "用户", "bot": "助手", "staff": "客服", "system": "系统", "event": "事件"}
REASONS = {"asked": "用户请求", "failures": "多次未通过", "picked_up": "客服接入"}


def zone_label(zone: str) -> str:
    """How staff pages name the zone their times are in."""
    return "北京时间" if zone in ("Asia/Shanghai", "Asia/Chongqing", "PRC") else zone


def _environment(zone: tzinfo) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["q"] = lambda value: quote(str(value), safe="")
    # Every staff-facing time in the support time zone, never the server's.
    env.filters["hm"] = lambda value: value.astimezone(zone).strftime("%m-%d %H:%M") if value else ""
    env.globals.update(
        WHO=WHO,
        REASONS=REASONS,
        ZONE_LABEL=zone_label(str(zone)),
        TICKET_STATES=TICKET_STATES,
        AUDIT_ACTIONS=AUDIT_ACTIONS,
    )
    env.filters["owner_label"] = owner_label
    return env


def _parse_key(raw: str) -> ConversationKey:
    if not KEY_PATTERN.fullmatch(raw):
        raise HTTPException(status_code=404, detail="unknown conversation")
    return ConversationKey.parse(raw)


def ticket_json(ticket: SupportTicket, now: datetime, words: StaffWords | None = None) -> dict[str, Any]:
    waited = now - (ticket.awaiting_since or now)
    return {
        "conversation": ticket.conversation,
        "url": f"/support/c/{quote(ticket.conversation, safe='')}",
        "channel": ticket.channel,
        "state": ticket.state,
        "state_label": TICKET_STATES.get(ticket.state, ticket.state),
        "flow_label": words.flow(ticket.flow) if words else ticket.flow,
        "step_label": words.step(ticket.flow, ticket.step) if words else ticket.step,
        "agent": ticket.agent,
        "reason": REASONS.get(ticket.reason, ticket.reason),
        "flow": ticket.flow,
        "step": ticket.step,
        "created_at": ticket.created_at.isoformat(),
        "last_user_at": ticket.last_user_at.isoformat() if ticket.last_user_at else None,
        "waiting_minutes": int(waited.total_seconds() // 60) if ticket.awaiting_since else None,
        "escalated": ticket.escalated_at is not None,
    }


def make_router(
    desk: SupportDesk,
    *,
    authenticator: StaffAuthenticator,
    records: CustomerRecords,
    media: MediaStore,
    secure_cookies: bool = False,
) -> APIRouter:
    router = APIRouter(prefix="/support", include_in_schema=False)
    env = _environment(desk.settings.zone)
    words = StaffWords(desk.engine.catalog, desk.engine.flows)
    env.globals["words"] = words
    sessions = ConsoleSessions(desk.sessions, lifetime=timedelta(hours=desk.settings.session_hours))

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(**context)
        return HTMLResponse(
            html,
            status_code=status,
            headers={
                "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )

    async def current(request: Request) -> ConsoleSession | None:
        return await sessions.find(request.cookies.get(SESSION_COOKIE), desk.now())

    async def staff_or_401(request: Request) -> ConsoleSession:
        session = await current(request)
        if session is None:
            raise HTTPException(status_code=401, detail="support login required")
        return session

    async def staff_for_post(request: Request, csrf: str | None) -> ConsoleSession:
        session = await staff_or_401(request)
        if not session.csrf_ok(csrf or request.headers.get("X-CSRF-Token")):
            raise HTTPException(status_code=403, detail="bad csrf token")
        return session

    def back_to(key: ConversationKey, error: str | None = None) -> RedirectResponse:
        url = f"/support/c/{quote(str(key), safe='')}"
        if error:
            url += f"?error={quote(error)}"
        return RedirectResponse(url, status_code=303)

    # ---- login -------------------------------------------------------------------------------

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(error: str | None = None) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = page("login.html", login_csrf=nonce, error=ERRORS.get(error or ""))
        response.set_cookie(
            LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=secure_cookies, path="/support"
        )
        return response

    @router.post("/login")
    async def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=128)],
        csrf: Annotated[str, Form(max_length=64)],
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
            return RedirectResponse("/support/login?error=expired_form", status_code=303)
        try:
            client = request.client.host if request.client else "unknown"
            identity = await authenticator.authenticate(username.strip(), password, client)
        except StaffLoginRefused as exc:
            return RedirectResponse(f"/support/login?error={exc.reason}", status_code=303)
        except StaffDirectoryUnavailable:
            return RedirectResponse("/support/login?error=directory_unavailable", status_code=303)
        token, _ = await sessions.open(identity, desk.now())
        response = RedirectResponse("/support/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            path="/support",
            max_age=desk.settings.session_hours * 3600,
        )
        response.delete_cookie(LOGIN_COOKIE, path="/support")
        return response

    @router.post("/logout")
    async def logout(request: Request, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        await staff_for_post(request, csrf)
        await sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/support/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/support")
        return response

    # ---- the inbox ---------------------------------------------------------------------------

    @router.get("/", response_class=HTMLResponse)
    async def inbox(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return RedirectResponse("/support/login", status_code=303)
        now = desk.now()
        return page(
            "inbox.html",
            staff=session,
            queue=[ticket_json(t, now, words) for t in await desk.open_tickets()],
            recent=await desk.recent_tickets(),
            canned=await desk.canned_answers(),
        )

    @router.get("/audit", response_class=HTMLResponse)
    async def audit_page(
        request: Request,
        actor: Annotated[str | None, Query(max_length=80)] = None,
        action: Annotated[str | None, Query(max_length=32)] = None,
        conversation: Annotated[str | None, Query(max_length=260)] = None,
    ) -> Response:
        """Admins only: every staff action and read, by staff member, action and conversation."""
        session = await current(request)
        if session is None:
            return RedirectResponse("/support/login", status_code=303)
        if not session.identity.is_admin:
            raise HTTPException(status_code=403, detail="admins only")
        entries = await desk.audit_search(actor=actor, action=action, conversation=conversation)
        return page(
            "audit.html",
            staff=session,
            entries=entries,
            actor=actor,
            action=action,
            conversation=conversation,
        )

    @router.get("/api/queue")
    async def queue(request: Request) -> JSONResponse:
        await staff_or_401(request)
        now = desk.now()
        return JSONResponse(
            {
                "version": desk.feed.version,
                "tickets": [ticket_json(t, now, words) for t in await desk.open_tickets()],
            }
        )

    @router.get("/events")
    async def events(request: Request) -> StreamingResponse:
        await staff_or_401(request)

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            ends = loop.time() + SSE_STREAM_SECONDS
            version = desk.feed.version
            yield f"retry: 2000\nevent: changed\ndata: {version}\n\n"
            while loop.time() < ends and not await request.is_disconnected():
                new = await desk.feed.wait_beyond(version, SSE_KEEPALIVE_SECONDS)
                if new != version:
                    version = new
                    yield f"event: changed\ndata: {version}\n\n"
                else:
                    # Also a nudge, should a change from another worker have been lost on the bus.
                    yield f"event: tick\ndata: {version}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/canned")
    async def add_canned(
        request: Request,
        title: Annotated[str, Form(min_length=1, max_length=80)],
        text: Annotated[str, Form(min_length=1, max_length=2000)],
        csrf: Annotated[str, Form(max_length=64)],
    ) -> Response:
        staff = await staff_for_post(request, csrf)
        await desk.add_canned(title, text, by=staff.username)
        return RedirectResponse("/support/", status_code=303)

    @router.post("/canned/{canned_id}/retire")
    async def retire_canned(
        request: Request, canned_id: int, csrf: Annotated[str, Form(max_length=64)]
    ) -> Response:
        staff = await staff_for_post(request, csrf)
        try:
            await desk.retire_canned(canned_id, by=staff.username)
        except DeskError as exc:
            raise HTTPException(status_code=404, detail=exc.code) from exc
        return RedirectResponse("/support/", status_code=303)

    # ---- one conversation ----------------------------------------------------------------------

    @router.get("/c/{raw_key}", response_class=HTMLResponse)
    async def conversation(request: Request, raw_key: str, error: str | None = None) -> Response:
        session = await current(request)
        if session is None:
            return RedirectResponse("/support/login", status_code=303)
        key = _parse_key(raw_key)
        view = await build_view(desk.engine, desk.store, key)
        if view is None:
            raise HTTPException(status_code=404, detail="unknown conversation")
        await desk.record_read(session.username, key, audit.VIEW_CONVERSATION)
        ticket = await desk.ticket_of(key)
        customer: CustomerRecordsView = await records.for_account(view.account_token)
        mine = ticket is not None and ticket.state == TicketState.CLAIMED and ticket.agent == session.username
        return page(
            "conversation.html",
            staff=session,
            key=key,
            view=view,
            ticket=ticket,
            mine=mine,
            customer=customer,
            quota=await desk.quota_of(key),
            canned=await desk.canned_answers(),
            audit=await desk.audit_of(key),
            error=ERRORS.get(error or "", error),
            wechat_kf=desk.transfers_to_wechat_kf(key),
        )

    @router.get("/api/c/{raw_key}/transcript")
    async def transcript(request: Request, raw_key: str) -> JSONResponse:
        staff = await staff_or_401(request)
        key = _parse_key(raw_key)
        await desk.record_read(staff.username, key, audit.READ_TRANSCRIPT)
        ticket = await desk.ticket_of(key)
        owner = await desk.store.owner_of(key)
        lines = await transcript_of(desk.store, key)
        return JSONResponse(
            {
                "owner": owner,
                "ticket": ticket_json(ticket, desk.now()) if ticket else None,
                "lines": [line.to_json() | {"who_label": WHO[line.who]} for line in lines],
            }
        )

    @router.get("/c/{raw_key}/media/{media_id}")
    async def conversation_media(request: Request, raw_key: str, media_id: str) -> Response:
        staff = await staff_or_401(request)
        key = _parse_key(raw_key)
        view = await build_view(desk.engine, desk.store, key)
        if view is None or media_id not in uploaded_media(view):
            raise HTTPException(status_code=404, detail="not found")
        await desk.record_read(staff.username, key, audit.VIEW_MEDIA, {"media_id": media_id})
        data = await media.get(media_id)
        kind = sniff(data)
        disposition = "inline" if kind.startswith("image/") or kind == "application/pdf" else "attachment"
        return Response(
            data,
            media_type=kind,
            headers={
                "Content-Disposition": disposition,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    async def act(
        request: Request, raw_key: str, csrf: str, action: str, agent: str | None = None
    ) -> Response:
        staff = await staff_for_post(request, csrf)
        key = _parse_key(raw_key)
        admin = staff.identity.is_admin
        try:
            if action == "claim":
                await desk.claim(key, staff.username)
            elif action == "take_over":
                await desk.take_over(key, staff.username)
            elif action == "release":
                await desk.release(key, staff.username)
            elif action == "assign":
                await desk.assign(
                    key, (agent or "").strip() or staff.username, by=staff.username, force=admin
                )
            elif action == "hand_back":
                await desk.hand_back(key, staff.username, force=admin)
            elif action == "resolve":
                await desk.resolve(key, staff.username, force=admin)
        except AlreadyClaimed as exc:
            return back_to(key, exc.code)
        except DeskError as exc:
            return back_to(key, exc.code)
        return back_to(key)

    @router.post("/c/{raw_key}/claim")
    async def claim(request: Request, raw_key: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        return await act(request, raw_key, csrf, "claim")

    @router.post("/c/{raw_key}/take-over")
    async def take_over(
        request: Request, raw_key: str, csrf: Annotated[str, Form(max_length=64)]
    ) -> Response:
        return await act(request, raw_key, csrf, "take_over")

    @router.post("/c/{raw_key}/release")
    async def release(request: Request, raw_key: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        return await act(request, raw_key, csrf, "release")

    @router.post("/c/{raw_key}/assign")
    async def assign(
        request: Request,
        raw_key: str,
        csrf: Annotated[str, Form(max_length=64)],
        agent: Annotated[str, Form(min_length=1, max_length=64)],
    ) -> Response:
        return await act(request, raw_key, csrf, "assign", agent)

    @router.post("/c/{raw_key}/hand-back")
    async def hand_back(
        request: Request, raw_key: str, csrf: Annotated[str, Form(max_length=64)]
    ) -> Response:
        return await act(request, raw_key, csrf, "hand_back")

    @router.post("/c/{raw_key}/resolve")
    async def resolve(request: Request, raw_key: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        return await act(request, raw_key, csrf, "resolve")

    @router.post("/c/{raw_key}/reply")
    async def reply(
        request: Request,
        raw_key: str,
        csrf: Annotated[str, Form(max_length=64)],
        text: Annotated[str, Form(max_length=4000)] = "",
        canned_id: Annotated[str, Form(max_length=12)] = "",
        file: Annotated[UploadFile | None, File()] = None,
    ) -> Response:
        staff = await staff_for_post(request, csrf)
        key = _parse_key(raw_key)
        limit = desk.settings.max_upload_bytes
        try:
            if file is not None and file.filename:
                data = await file.read(limit + 1)
                if len(data) > limit:
                    return back_to(key, "file_too_large")
                stored = await media.put(data, filename=file.filename[:120], content_type=sniff(data))
                await desk.reply_file(key, staff.username, stored, caption=text.strip())
            elif canned_id.strip().isdigit():
                await desk.reply_canned(key, staff.username, int(canned_id))
            elif text.strip():
                await desk.reply_text(key, staff.username, text.strip())
            else:
                return back_to(key, "empty_reply")
        except DeskError as exc:
            return back_to(key, exc.code)
        if request.headers.get("X-Requested-With") == "fetch":
            return JSONResponse({"sent": True})
        return back_to(key)

    return router
