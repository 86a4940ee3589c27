"""Developer pages of the embedded default: ``GET /dev/sms`` shows the console SMS outbox.

With the console SMS provider no text message leaves the machine; this page is where a person
trying the embedded setup reads their verification code. It is mounted only when
``settings.dev_pages`` is on and the platform is not in production mode.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from seal_platform.auth import ServicesDep
from seal_platform.sms import PURPOSE_LABELS, ConsoleSmsProvider, SmsPurpose
from seal_platform.validation import mask_mobile

router = APIRouter(prefix="/dev", tags=["dev"], include_in_schema=False)

SHOWN = 20

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>开发用短信收件箱</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; min-width: 36rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .5rem .8rem; text-align: left; }}
td.code {{ font: bold 1.4rem monospace; letter-spacing: .15em; color: #b00; }}
p.note {{ color: #666; }}
</style></head><body>
<h1>开发用短信收件箱</h1>
<p class="note">嵌入式默认配置不发送真实短信，验证码显示在这里（每5秒刷新，最新在上）。</p>
{body}
</body></html>
"""


def _purpose_label(purpose: str) -> str:
    try:
        return PURPOSE_LABELS[SmsPurpose(purpose)]
    except ValueError:
        return purpose


@router.get("/sms", response_class=HTMLResponse)
async def sms_outbox(services: ServicesDep) -> HTMLResponse:
    provider = services.sms_provider
    if not isinstance(provider, ConsoleSmsProvider):
        return HTMLResponse(_PAGE.format(body="<p>当前短信通道不是控制台通道，短信已真实发送。</p>"))
    messages = provider.latest(SHOWN)
    if not messages:
        return HTMLResponse(_PAGE.format(body="<p>还没有短信。</p>"))
    rows = "\n".join(
        "<tr><td>{phone}</td><td>{purpose}</td><td class=code>{code}</td><td>{time}</td></tr>".format(
            phone=escape(mask_mobile(sms.phone)),
            purpose=escape(_purpose_label(sms.purpose)),
            code=escape(sms.code),
            time=escape(sms.sent_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        )
        for sms in messages
    )
    header = "<tr><th>手机号</th><th>用途</th><th>验证码</th><th>时间</th></tr>"
    table = f"<table><thead>{header}</thead>\n{rows}\n</table>"
    return HTMLResponse(_PAGE.format(body=table))
