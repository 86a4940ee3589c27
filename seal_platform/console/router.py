"""The console's pages and form actions under ``/console``.

Pages are GETs; every change is a form POST that carries the session's CSRF token, is checked
against the staff member's roles, runs one ``staff_actions`` / ``invoices`` function in one
unit of work, and redirects back with a message (post/redirect/get). A refusal of the platform
(a state-machine rule, a bad waybill, ...) becomes that message, never a server error; a role or
CSRF refusal is a 403 page.
"""

# Over 600 lines: every page of the staff console (review, production, shipping,
# invoices, audit, users) as thin handlers over the platform's rules; split per queue if it grows.

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from seal_platform import invoices, staff_actions
from seal_platform.api_documents import _read_limited as read_limited
from seal_platform.console import personal_reads, queues, staff_admin
from seal_platform.console.auth import (
    ConsoleContext,
    LoginRequired,
    action,
    client_ip,
    has_any_role,
    page,
)
from seal_platform.console.labels import (
    ACTION_LABELS,
    PRODUCTION_STEP_LABELS,
    REFUSAL_TEXTS,
    ROLE_LABELS,
    STATUS_LABELS,
    refusal_text,
)
from seal_platform.console.lockout import LoginLocked, purge_stale
from seal_platform.console.previews import impression_png
from seal_platform.console.rendering import SECURITY_HEADERS, STATIC, console_base, render
from seal_platform.console.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_matches,
    end_session,
    flash_to,
    load_session,
    purge_expired,
    session_policy,
    start_session,
)
from seal_platform.documents import DocumentKind, get_document_any, read_content
from seal_platform.errors import Forbidden, NotFound, PlatformError
from seal_platform.invoices import InvoiceStatus
from seal_platform.orders import get_order_any, order_code
from seal_platform.security import new_token
from seal_platform.services import PlatformServices, get_services
from seal_platform.staff import StaffRole
from seal_platform.staff_signin import LoginFailed, sign_in


class ConsoleRoute(APIRoute):
    """Turns what a console request can run into (no session, a refusal, a malformed form)
    into a page instead of the API's JSON problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                target = f"{console_base(request)}/login?next={quote(exc.next_path, safe='')}"
                return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
            except PlatformError as exc:
                return _error_page(request, exc.status_code, refusal_text(exc))
            except RequestValidationError:
                return _error_page(request, 422, "表单内容不完整或格式不对，请返回检查后重试。")

        return console_handler


router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

Services = Annotated[PlatformServices, Depends(get_services)]
AnyStaff = Annotated[ConsoleContext, Depends(page())]
ReviewerPage = Annotated[ConsoleContext, Depends(page(StaffRole.REVIEWER))]
ProducerPage = Annotated[ConsoleContext, Depends(page(StaffRole.PRODUCER))]
ShipperPage = Annotated[ConsoleContext, Depends(page(StaffRole.SHIPPER))]
FinancePage = Annotated[ConsoleContext, Depends(page(StaffRole.FINANCE))]
AdminPage = Annotated[ConsoleContext, Depends(page(StaffRole.ADMIN))]
AnyStaffAction = Annotated[ConsoleContext, Depends(action())]
ReviewerAction = Annotated[ConsoleContext, Depends(action(StaffRole.REVIEWER))]
ProducerAction = Annotated[ConsoleContext, Depends(action(StaffRole.PRODUCER))]
ShipperAction = Annotated[ConsoleContext, Depends(action(StaffRole.SHIPPER))]
FinanceAction = Annotated[ConsoleContext, Depends(action(StaffRole.FINANCE))]
AdminAction = Annotated[ConsoleContext, Depends(action(StaffRole.ADMIN))]
ReturnTo = Annotated[str, Form()]

# Who may open a document, by its kind: uploaded scans carry ID numbers and are for the people
# who check or make the seal; invoices are finance's.
_SCAN_READERS = (StaffRole.REVIEWER, StaffRole.PRODUCER, StaffRole.SUPPORT)
DOCUMENT_READERS: dict[str, tuple[StaffRole, ...]] = {
    DocumentKind.BUSINESS_LICENCE: _SCAN_READERS,
    DocumentKind.ID_CARD_FRONT: _SCAN_READERS,
    DocumentKind.ID_CARD_BACK: _SCAN_READERS,
    DocumentKind.IMPRESSION_FORM: _SCAN_READERS,
    DocumentKind.INVOICE_PDF: (StaffRole.FINANCE, StaffRole.SUPPORT),
}
# Which document kinds viewing leaves a trace of in the audit log.
AUDITED_VIEWS = frozenset(
    {
        DocumentKind.BUSINESS_LICENCE,
        DocumentKind.ID_CARD_FRONT,
        DocumentKind.ID_CARD_BACK,
        DocumentKind.IMPRESSION_FORM,
    }
)

NAV = (
    ("dashboard", "", "工作台", ()),
    ("review", "/review", "审核", (StaffRole.REVIEWER,)),
    ("production", "/production", "制作", (StaffRole.PRODUCER,)),
    ("shipping", "/shipping", "邮寄", (StaffRole.SHIPPER,)),
    ("invoices", "/invoices", "发票", (StaffRole.FINANCE,)),
    ("orders", "/orders", "订单", ()),
    ("audit", "/audit", "审计日志", (StaffRole.ADMIN,)),
    ("users", "/users", "员工", (StaffRole.ADMIN,)),
)


def _page(
    ctx: ConsoleContext, template: str, active: str, status_code: int = 200, **context: Any
) -> Response:
    nav = [(key, ctx.base + path, label) for key, path, label, roles in NAV if has_any_role(ctx.staff, roles)]
    return render(template, status_code, ctx=ctx, nav=nav, active=active, base=ctx.base, **context)


def _error_page(request: Request, status_code: int, message: str) -> Response:
    return render(
        "error.html", status_code, ctx=None, nav=[], active="", base=console_base(request), message=message
    )


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


async def _perform(
    request: Request,
    ctx: ConsoleContext,
    operation: Callable[[AsyncSession], Awaitable[object]],
    *,
    done: str,
    back: str,
) -> RedirectResponse:
    """Run one action in its own unit of work; its outcome is the next page's message."""
    services = ctx.services

    async def in_one_transaction() -> None:
        async with services.db.session() as session:
            await operation(session)

    return await _perform_alone(request, ctx, in_one_transaction, done=done, back=back)


async def _perform_alone(
    request: Request,
    ctx: ConsoleContext,
    operation: Callable[[], Awaitable[object]],
    *,
    done: str,
    back: str,
) -> RedirectResponse:
    """Like ``_perform`` for an action that opens its own sessions (it calls a provider between
    them, holding none)."""
    services = ctx.services
    try:
        await operation()
    except Forbidden:
        raise
    except PlatformError as exc:
        kind, text = "error", refusal_text(exc)
    else:
        kind, text = "ok", done
    async with services.db.session() as session:
        await flash_to(session, request.cookies.get(SESSION_COOKIE), kind, text)
    return _redirect(back)


def _back(ctx: ConsoleContext, return_to: str, queue: str, order_id: str) -> str:
    return f"{ctx.base}/orders/{quote(order_id)}" if return_to == "order" else f"{ctx.base}{queue}"


# -- login / logout ------------------------------------------------------------------------


def _safe_next(base: str, candidate: str | None) -> str:
    """Only a path inside the console: never another site (``//evil``) or another app."""
    if (
        candidate
        and candidate.startswith(base + "/")
        and not any(bad in candidate for bad in ("//", "\\", ".."))
    ):
        return candidate
    return base + "/"


def _cookie_secure(request: Request, services: PlatformServices) -> bool:
    return request.url.scheme == "https" or services.settings.public_base_url.startswith("https://")


def _login_form(
    request: Request, services: PlatformServices, *, next_path: str, error: str | None, status_code: int
) -> Response:
    base = console_base(request)
    token = new_token()
    response = render(
        "login.html",
        status_code,
        ctx=None,
        nav=[],
        active="login",
        base=base,
        csrf_token=token,
        next_path=_safe_next(base, next_path),
        error=error,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=base,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, services),
    )
    return response


@router.get("/login")
async def login_page(request: Request, services: Services, next: str | None = None) -> Response:
    async with services.db.session() as session:
        active = await load_session(session, services, request.cookies.get(SESSION_COOKIE))
    if active is not None:
        return _redirect(_safe_next(console_base(request), next))
    return _login_form(request, services, next_path=next or "", error=None, status_code=200)


@router.post("/login")
async def login(
    request: Request,
    services: Services,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str | None, Form()] = None,
    next: Annotated[str, Form()] = "",
) -> Response:
    base = console_base(request)
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_form(
            request, services, next_path=next, error="登录页面已过期，请重新输入。", status_code=403
        )
    if not username or not password:
        return _login_form(request, services, next_path=next, error="请输入用户名和密码。", status_code=422)
    try:
        staff = await sign_in(services, username, password, client_ip(request))
    except LoginLocked as exc:
        return _login_form(request, services, next_path=next, error=exc.message + "。", status_code=429)
    except LoginFailed:
        return _login_form(request, services, next_path=next, error="用户名或密码错误。", status_code=401)
    await purge_stale(services)
    async with services.db.session() as session:
        await purge_expired(session, services)
        # A planted or stale session cookie is dropped; the new session gets a new id.
        await end_session(session, request.cookies.get(SESSION_COOKIE))
        started = await start_session(session, services, staff, client_ip=client_ip(request))
    response = _redirect(_safe_next(base, next))
    response.set_cookie(
        SESSION_COOKIE,
        started.session_id,
        max_age=int(session_policy(services).absolute_lifetime.total_seconds()),
        path=base,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, services),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=base)
    return response


@router.post("/logout")
async def logout(request: Request, ctx: AnyStaffAction) -> Response:
    async with ctx.services.db.session() as session:
        await end_session(session, request.cookies.get(SESSION_COOKIE))
    response = _redirect(f"{ctx.base}/login")
    response.delete_cookie(SESSION_COOKIE, path=ctx.base)
    return response


@router.get("/static/production.js")
async def production_script() -> Response:
    return Response(
        (STATIC / "production.js").read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/static/console.css")
async def stylesheet() -> Response:
    return Response(
        (STATIC / "console.css").read_bytes(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# -- dashboard -----------------------------------------------------------------------------


@router.get("")
async def console_root(request: Request) -> Response:
    return _redirect(console_base(request) + "/")


@router.get("/")
async def dashboard(ctx: AnyStaff) -> Response:
    async with ctx.services.db.session() as session:
        counts = await queues.queue_counts(session)
    return _page(ctx, "dashboard.html", "dashboard", counts=counts, StaffRole=StaffRole)


# -- review --------------------------------------------------------------------------------


@router.get("/review")
async def review_page(ctx: ReviewerPage) -> Response:
    async with ctx.services.db.session() as session:
        cards = await queues.review_queue(session)
    return _page(ctx, "review.html", "review", cards=cards)


@router.post("/orders/{order_id}/approve")
async def approve(
    request: Request, order_id: str, ctx: ReviewerAction, return_to: ReturnTo = "queue"
) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_actions.approve(session, ctx.services, ctx.staff, order_id),
        done=f"订单 {order_code(order_id)} 已审核通过，进入制作队列。",
        back=_back(ctx, return_to, "/review", order_id),
    )


@router.post("/orders/{order_id}/reject")
async def reject(
    request: Request,
    order_id: str,
    ctx: ReviewerAction,
    reason: Annotated[str, Form(max_length=500)] = "",
    return_to: ReturnTo = "queue",
) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_actions.reject(session, ctx.services, ctx.staff, order_id, reason),
        done=f"订单 {order_code(order_id)} 已驳回，申请人会收到驳回原因。",
        back=_back(ctx, return_to, "/review", order_id),
    )


# -- production ----------------------------------------------------------------------------


@router.get("/production")
async def production_page(ctx: ProducerPage) -> Response:
    from seal_platform.production.progress import production_progress

    async with ctx.services.db.session() as session:
        cards = await queues.production_queue(session)
    stations = await _my_stations(ctx)
    board = production_progress(ctx.services)
    # runs started from this page carry on in the background: their progress (or the last
    # run's error) shows at once
    running = {
        card.order.id for card in cards if (view := board.view(card.order.id))["running"] or view["error"]
    }
    return _page(
        ctx,
        "production.html",
        "production",
        cards=cards,
        stations=stations,
        running=running,
        **_station_view(ctx),
    )


async def _my_stations(ctx: ConsoleContext) -> list[Any]:
    from seal_platform.production.station_hub import station_hub

    if ctx.services.settings.production_station != "remote":
        return []
    return list(await station_hub(ctx.services).stations_of(ctx.staff.username))


def _station_view(ctx: ConsoleContext) -> dict[str, Any]:
    from seal_platform.production.station_hub import station_hub

    remote = ctx.services.settings.production_station == "remote"
    return {
        "station_mode": ctx.services.settings.production_station,
        # production runs on the station of whoever clicks: show this staff member's own
        "stations_online": station_hub(ctx.services).online(ctx.staff.username) if remote else [],
    }


@router.post("/station/{device_id}/unpair")
async def station_unpair(
    request: Request, device_id: str, ctx: ProducerAction, confirm: Annotated[str, Form()] = ""
) -> Response:
    """Unpair one of this staff member's stations, after the confirmation box was ticked."""
    from seal_platform.production.station_hub import station_hub

    if confirm != "yes":
        kind, text = "error", "解除配对前请勾选确认：解除后这台电脑不能再作为制作台连接。"
    elif await station_hub(ctx.services).unpair(device_id, ctx.staff.username, by=ctx.staff.username):
        kind, text = (
            "ok",
            "制作台已解除配对：这台电脑不能再连接；它正在制作的 UKey 已转给您的另一台在线制作台（没有则需重试）。",
        )
    else:
        kind, text = "error", "找不到这台制作台，或它已经解除配对。"
    async with ctx.services.db.session() as session:
        await flash_to(session, request.cookies.get(SESSION_COOKIE), kind, text)
    return _redirect(f"{ctx.base}/production")


@router.get("/orders/{order_id}/production-progress")
async def production_progress_view(order_id: str, ctx: ProducerPage) -> Response:
    """The steps the station has reported for the order's current (or last) production run,
    polled by the production page while the run goes on in the background."""
    from seal_platform.production.progress import production_progress

    view = production_progress(ctx.services).view(order_id)
    view["labels"] = [PRODUCTION_STEP_LABELS.get(step, step) for step in view["steps"]]
    if view["error"]:
        view["error_text"] = REFUSAL_TEXTS.get(view["error"], "制作失败，未记录为已制作：请重试。")
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


@router.post("/station/pair-code")
async def station_pair_code(request: Request, ctx: ProducerAction) -> Response:
    """A pairing code for the production PC's `ukey-bridge`, bound to this staff member."""
    from seal_platform.production.station_hub import station_hub

    code = station_hub(ctx.services).create_code(ctx.staff.username)
    server = ctx.services.settings.public_base_url.rstrip("/") + "/station"
    done = (
        f"制作台配对码：{code}（10 分钟内有效）。在制作台电脑上运行："
        f"ukey-bridge pair {code} --server {server} ，然后运行 ukey-bridge run --module <UKey 的 PKCS#11 模块>。"
    )

    async def nothing(_session: AsyncSession) -> None:
        return None

    return await _perform(request, ctx, nothing, done=done, back=f"{ctx.base}/production")


@router.post("/orders/{order_id}/produce")
async def produce(
    request: Request, order_id: str, ctx: ProducerAction, return_to: ReturnTo = "queue"
) -> Response:
    """Start the production and answer at once: the run goes on in the background, holding no
    database connection while the station works, and the page polls its progress."""
    return await _perform_alone(
        request,
        ctx,
        lambda: staff_actions.start_production(ctx.services, ctx.staff, order_id),
        done=f"订单 {order_code(order_id)} 已开始制作：请在制作台上按提示操作，完成后进入邮寄队列。",
        back=_back(ctx, return_to, "/production", order_id),
    )


@router.get("/orders/{order_id}/impression/{kind}.png")
async def impression(order_id: str, kind: str, ctx: AnyStaff) -> Response:
    async with ctx.services.db.session() as session:
        order = await get_order_any(session, order_id)
        png = await impression_png(session, ctx.services, order, kind)
    return Response(
        png, media_type="image/png", headers={**SECURITY_HEADERS, "Cache-Control": "private, no-store"}
    )


# -- shipping ------------------------------------------------------------------------------


@router.get("/shipping")
async def shipping_page(ctx: ShipperPage) -> Response:
    async with ctx.services.db.session() as session:
        ready = await queues.shipping_queue(session)
        transit = await queues.in_transit(session)
    return _page(ctx, "shipping.html", "shipping", cards=ready, transit=transit)


@router.post("/orders/{order_id}/ship")
async def ship(
    request: Request,
    order_id: str,
    ctx: ShipperAction,
    waybill: Annotated[str, Form(max_length=40)] = "",
    return_to: ReturnTo = "queue",
) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_actions.ship(session, ctx.services, ctx.staff, order_id, waybill),
        done=f"订单 {order_code(order_id)} 已登记顺丰运单，申请人会收到查询链接。",
        back=_back(ctx, return_to, "/shipping", order_id),
    )


@router.post("/orders/{order_id}/complete")
async def complete(
    request: Request, order_id: str, ctx: ShipperAction, return_to: ReturnTo = "queue"
) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_actions.complete(session, ctx.services, ctx.staff, order_id),
        done=f"订单 {order_code(order_id)} 已确认签收，办理完成。",
        back=_back(ctx, return_to, "/shipping", order_id),
    )


# -- invoices ------------------------------------------------------------------------------


@router.get("/invoices")
async def invoices_page(ctx: FinancePage) -> Response:
    async with ctx.services.db.session() as session:
        requested = await queues.invoice_rows(session, InvoiceStatus.REQUESTED)
        issued = await queues.invoice_rows(session, InvoiceStatus.ISSUED, limit=20)
    settings = ctx.services.settings
    return _page(
        ctx,
        "invoices.html",
        "invoices",
        requested=requested,
        issued=issued,
        invoice_provider=settings.effective_invoice_provider,
        tax_rate=settings.invoice_tax_rate,
    )


@router.post("/invoices/{invoice_id}/issue")
async def issue_invoice(request: Request, invoice_id: str, ctx: FinanceAction) -> Response:
    return await _perform_alone(
        request,
        ctx,
        lambda: invoices.issue(ctx.services, invoice_id, actor=ctx.staff.actor),
        done="发票已开具，将发送给申请人。",
        back=f"{ctx.base}/invoices",
    )


@router.post("/invoices/{invoice_id}/upload")
async def upload_invoice(
    request: Request,
    invoice_id: str,
    ctx: FinanceAction,
    files: Annotated[list[UploadFile], File()],
    number: Annotated[str, Form(max_length=20)] = "",
    issued_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The manual invoicing adapter: the invoice issued in the tax system, uploaded by finance."""
    limit = ctx.services.settings.upload_max_bytes
    contents = [await read_limited(upload, limit) for upload in files if upload.filename]
    try:
        day = date.fromisoformat(issued_on) if issued_on else None
    except ValueError:
        day = None
    return await _perform(
        request,
        ctx,
        lambda session: invoices.issue_uploaded(
            session, ctx.services, invoice_id, contents, actor=ctx.staff.actor, number=number, issued_on=day
        ),
        done="发票文件已上传，将发送给申请人。",
        back=f"{ctx.base}/invoices",
    )


# -- orders and documents ------------------------------------------------------------------


@router.get("/orders")
async def orders_page(
    ctx: AnyStaff,
    status: Annotated[str, Query(max_length=24)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    async with ctx.services.db.session() as session:
        cards = await queues.search_orders(session, status=status or None, text=q or None)
    return _page(ctx, "orders.html", "orders", cards=cards, status=status, q=q, statuses=STATUS_LABELS)


async def _order_page(
    ctx: ConsoleContext, order_id: str, revealed: personal_reads.Revealed | None
) -> Response:
    """The order's details; opening them is a read of personal data, so it is on record."""
    async with ctx.services.db.session() as session:
        detail = await queues.order_detail(session, order_id)
        if detail is None:
            raise NotFound("order not found", order_id=order_id)
        if revealed is None:
            personal_reads.record_read(
                session,
                ctx.services,
                ctx.staff,
                action="view_order",
                object_type="order",
                object_id=order_id,
                what={},
            )
    return _page(
        ctx,
        "order.html",
        "orders",
        detail=detail,
        card=detail.card,
        StaffRole=StaffRole,
        revealed=revealed,
        revealable=personal_reads.REVEALABLE,
    )


@router.get("/orders/{order_id}")
async def order_page(order_id: str, ctx: AnyStaff) -> Response:
    return await _order_page(ctx, order_id, None)


@router.post("/orders/{order_id}/reveal")
async def reveal(
    order_id: str,
    ctx: AnyStaffAction,
    field: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """One full value of the order, after a reason, recorded in the audit log."""
    async with ctx.services.db.session() as session:
        revealed = await personal_reads.reveal(session, ctx.services, ctx.staff, order_id, field, reason)
    return await _order_page(ctx, order_id, revealed)


@router.get("/documents/{document_id}")
async def document(
    document_id: str, ctx: AnyStaff, reason: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """A scan is shown for the work in the staff member's queue or after a reason; every read
    of any document is in the audit log with its purpose."""
    services = ctx.services
    async with services.db.session() as session:
        found = await get_document_any(session, document_id)
        readers = DOCUMENT_READERS.get(found.kind, ())
        if not has_any_role(ctx.staff, readers):
            raise Forbidden("您的角色无权查看这份材料。", code="console_role_required")
        purpose: str | None = reason.strip() or found.kind
        if found.kind in AUDITED_VIEWS:
            purpose = await personal_reads.scan_purpose(session, ctx.staff, found, reason)
            if purpose is None:
                return _page(ctx, "reason.html", "orders", 403, document_id=found.id)
        personal_reads.record_read(
            session,
            services,
            ctx.staff,
            action="preview_document",
            object_type="document",
            object_id=found.id,
            what={"kind": found.kind, "reason": purpose or ""},
        )
    data = await read_content(services, found)
    return Response(
        data,
        media_type=found.content_type,
        headers={
            # The bytes were sniffed and checked at upload (JPEG, PNG, PDF only), so the browser
            # may show them itself; no page CSP here, which would stop its PDF viewer.
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "private, no-store",
        },
    )


# -- audit log -----------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(
    ctx: AdminPage,
    actor: Annotated[str, Query(max_length=120)] = "",
    action_name: Annotated[str, Query(alias="action", max_length=64)] = "",
    object_type: Annotated[str, Query(max_length=32)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    before: int | None = None,
) -> Response:
    wanted = queues.AuditFilter(
        actor=actor.strip(),
        action=action_name.strip(),
        object_type=object_type.strip(),
        object_id=object_id.strip(),
        before_id=before,
    )
    async with ctx.services.db.session() as session:
        entries = await queues.audit_entries(session, wanted)
        actors = await queues.audit_actors(session)
    next_before = entries[-1].id if len(entries) == queues.AUDIT_PAGE else None
    return _page(
        ctx,
        "audit.html",
        "audit",
        entries=entries,
        wanted=wanted,
        actors=actors,
        actions=ACTION_LABELS,
        next_before=next_before,
    )


# -- staff users ---------------------------------------------------------------------------


@router.get("/users")
async def users_page(ctx: AdminPage) -> Response:
    async with ctx.services.db.session() as session:
        users = await staff_admin.list_staff(session)
    return _page(ctx, "users.html", "users", users=users, roles=ROLE_LABELS)


@router.post("/users")
async def create_user(
    request: Request,
    ctx: AdminAction,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    async def create(session: AsyncSession) -> object:
        return await staff_admin.add_staff_user(
            session,
            ctx.services,
            actor=ctx.staff.actor,
            username=username,
            password=password,
            roles=staff_admin.parse_roles(roles or []),
            display_name=display_name,
        )

    return await _perform(request, ctx, create, done=f"员工 {username} 已创建。", back=f"{ctx.base}/users")


@router.post("/users/{staff_id}/password")
async def reset_password(
    request: Request, staff_id: str, ctx: AdminAction, password: Annotated[str, Form(max_length=256)] = ""
) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_admin.reset_password(
            session, ctx.services, actor=ctx.staff.actor, staff_id=staff_id, password=password
        ),
        done="密码已重置，该员工需用新密码重新登录。",
        back=f"{ctx.base}/users",
    )


@router.post("/users/{staff_id}/disable")
async def disable_user(request: Request, staff_id: str, ctx: AdminAction) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_admin.set_active(
            session, ctx.services, actor=ctx.staff, staff_id=staff_id, active=False
        ),
        done="员工已停用，其登录已失效。",
        back=f"{ctx.base}/users",
    )


@router.post("/users/{staff_id}/enable")
async def enable_user(request: Request, staff_id: str, ctx: AdminAction) -> Response:
    return await _perform(
        request,
        ctx,
        lambda session: staff_admin.set_active(
            session, ctx.services, actor=ctx.staff, staff_id=staff_id, active=True
        ),
        done="员工已启用。",
        back=f"{ctx.base}/users",
    )
