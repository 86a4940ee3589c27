"""Nuonuo open platform (诺诺开放平台) e-invoicing: ``nuonuo.OpeMplatform.requestBillingNew`` to
ask for an invoice, ``nuonuo.OpeMplatform.queryInvoiceResult`` polled for the result by the
request's serial number (``invoiceSerialNum``), the issued PDF/OFD/XML downloaded from the URLs it
returns. A request whose result did not come back is asked for again by that serial number, never
submitted twice (Nuonuo refuses a repeated ``orderNo``).

Signing (docs "开放平台加密参考", https://open.nuonuo.com): URL parameters ``senid`` (32 random
characters), ``nonce`` (8 digits), ``timestamp`` (seconds) and ``appkey``; header
``X-Nuonuo-Sign`` = Base64(HmacSHA1(appSecret,
"a=services&l=v1&p=open&k={appkey}&i={senid}&n={nonce}&t={timestamp}&f={body}")); headers
``accessToken``, ``userTax`` (the seller's tax number) and ``method``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from seal_platform.errors import UpstreamError
from seal_platform.invoicing import (
    InvoiceOrder,
    InvoiceStillPending,
    IssuedFile,
    IssuedInvoice,
    KeepSerial,
    yuan,
)

log = logging.getLogger(__name__)

REQUEST_METHOD = "nuonuo.OpeMplatform.requestBillingNew"
QUERY_METHOD = "nuonuo.OpeMplatform.queryInvoiceResult"
SUCCESS = "E0000"
# requestBillingNew's answer to an orderNo it has seen: the invoice was submitted before.
REPEATED_ORDER = "E9106"
# queryInvoiceResult status: 2 开票完成; 20/21 开票中; 22/24 开票失败 (others: failed too).
DONE, PENDING = "2", frozenset({"20", "21"})


def sign(app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, body: str) -> str:
    text = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"
    digest = hmac.new(app_secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class NuonuoError(UpstreamError):
    code = "invoice_provider_failed"


@dataclass
class NuonuoInvoicing:
    app_key: str
    app_secret: str
    access_token: str
    seller_tax_number: str
    seller_address: str
    seller_bank: str
    url: str = "https://sdk.nuonuo.com/open/v1/services"
    poll_interval: float = 3.0
    max_polls: int = 20
    transport: httpx.AsyncBaseTransport | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    name: str = field(default="nuonuo", init=False)

    async def _call(self, http: httpx.AsyncClient, method: str, content: dict[str, Any]) -> Any:
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        senid = secrets.token_hex(16)
        nonce = str(secrets.randbelow(90_000_000) + 10_000_000)
        timestamp = str(int(datetime.now(UTC).timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Nuonuo-Sign": sign(self.app_secret, self.app_key, senid, nonce, timestamp, body),
            "accessToken": self.access_token,
            "userTax": self.seller_tax_number,
            "method": method,
        }
        params = {"senid": senid, "nonce": nonce, "timestamp": timestamp, "appkey": self.app_key}
        try:
            response = await http.post(self.url, params=params, headers=headers, content=body.encode())
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NuonuoError("开票服务暂时无法访问，请稍后再试", provider_method=method) from exc
        if not isinstance(answer, dict) or answer.get("code") != SUCCESS:
            code = answer.get("code") if isinstance(answer, dict) else None
            describe = answer.get("describe") if isinstance(answer, dict) else None
            log.warning("nuonuo %s refused: %s %s", method, code, describe)
            raise NuonuoError(
                "开票服务拒绝了开票请求，请检查开票信息",
                provider_code=str(code),
                provider_message=str(describe),
            )
        return answer.get("result")

    async def issue(self, order: InvoiceOrder, *, accepted: KeepSerial | None = None) -> IssuedInvoice:
        amounts = order.amounts
        request = {
            "order": {
                "buyerName": order.buyer_name,
                "buyerTaxNum": order.buyer_tax_number,
                "buyerEmail": order.buyer_email,
                "salerTaxNum": self.seller_tax_number,
                "salerAddress": self.seller_address,
                "salerAccount": self.seller_bank,
                "orderNo": order.reference.replace("-", "")[:20],
                "invoiceDate": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "clerk": order.drawer,
                "invoiceType": "1",  # a blue (normal) invoice
                "invoiceLine": "pc",  # 数电普票
                "pushMode": "-1",  # we deliver it ourselves, in the chat and by e-mail
                "remark": order.remarks,
                "invoiceDetail": [
                    {
                        "goodsName": order.item_name,
                        "num": "1",
                        "withTaxFlag": "1",
                        "price": yuan(amounts.with_tax_fen),
                        "taxRate": str(amounts.rate),
                        "taxIncludedAmount": yuan(amounts.with_tax_fen),
                        "taxExcludedAmount": yuan(amounts.without_tax_fen),
                        "tax": yuan(amounts.tax_fen),
                    }
                ],
            }
        }
        async with httpx.AsyncClient(transport=self.transport, timeout=20.0) as http:
            serial = order.provider_serial
            if not serial:
                submitted = await self._submit(http, request)
                serial = str((submitted or {}).get("invoiceSerialNum") or "")
                if not serial:
                    raise NuonuoError("开票服务的回复不完整，请稍后再试", provider_method=REQUEST_METHOD)
                # Kept before the polls (which can take a minute): a repeated orderNo is refused,
                # so a serial lost with a dying process would leave the invoice unissuable.
                if accepted is not None:
                    await accepted(serial)
            # else: submitted before and not answered yet; Nuonuo refuses a repeated orderNo, so
            # the retry asks for that request's result by its serial number
            return await self._result(http, serial)

    async def _submit(self, http: httpx.AsyncClient, request: dict[str, Any]) -> Any:
        try:
            return await self._call(http, REQUEST_METHOD, request)
        except NuonuoError as exc:
            if exc.details.get("provider_code") != REPEATED_ORDER:
                raise
            # Submitted before, and its serial never reached us (the answer was lost on the
            # way): Nuonuo will refuse it for good, so say what finance can do instead.
            raise NuonuoError(
                "这张发票此前已提交到诺诺，但开具结果没有取回：请在诺诺平台找到它（订单编号"
                f"{request['order']['orderNo']}），下载发票文件后在本页上传",
                code="invoice_already_submitted",
                **exc.details,
            ) from exc

    async def _result(self, http: httpx.AsyncClient, serial: str) -> IssuedInvoice:
        """Poll ``queryInvoiceResult`` for ``serial``; while it is not final, or Nuonuo cannot
        be reached, ``InvoiceStillPending`` keeps the serial for the retry."""
        for _ in range(self.max_polls):
            try:
                results = await self._call(
                    http, QUERY_METHOD, {"serialNos": [serial], "isOfferInvoiceDetail": "0"}
                )
            except NuonuoError as exc:
                raise InvoiceStillPending(exc.message, serial=serial, **exc.details) from exc
            result = results[0] if isinstance(results, list) and results else {}
            status = str(result.get("status", ""))
            if status == DONE:
                try:
                    return await self._issued(http, result)
                except NuonuoError as exc:  # issued, but its files did not download: ask again
                    raise InvoiceStillPending(exc.message, serial=serial, **exc.details) from exc
            if status not in PENDING:
                raise NuonuoError(
                    "开票失败，请联系财务处理",
                    provider_status=status,
                    provider_message=str(result.get("failCause") or result.get("statusMsg") or ""),
                )
            await self.sleep(self.poll_interval)
        raise InvoiceStillPending("开票结果尚未返回，请稍后再试", serial=serial)

    async def _issued(self, http: httpx.AsyncClient, result: dict[str, Any]) -> IssuedInvoice:
        number = str(result.get("invoiceNo") or "")
        files: list[IssuedFile] = []
        for key, extension, content_type in (
            ("pdfUrl", "pdf", "application/pdf"),
            ("ofdUrl", "ofd", "application/ofd"),
            ("xmlUrl", "xml", "application/xml"),
        ):
            url = result.get(key)
            if not url:
                continue
            try:
                response = await http.get(str(url))
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise NuonuoError("发票文件下载失败，请稍后再试", file=key) from exc
            files.append(IssuedFile(f"invoice-{number}.{extension}", content_type, response.content))
        if not number or not files:
            raise NuonuoError("开票服务的回复不完整，请稍后再试", provider_method=QUERY_METHOD)
        issued_ms = result.get("invoiceTime")
        # invoiceTime is milliseconds since the epoch; the date is the one in China (UTC+8).
        moment = datetime.fromtimestamp(int(issued_ms) / 1000, UTC) if issued_ms else datetime.now(UTC)
        issued_on = (moment + timedelta(hours=8)).date()
        return IssuedInvoice(number=number, issued_on=issued_on, files=files)
