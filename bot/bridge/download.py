"""The UKey helper's download: the wheel ``scripts/build-bridge-wheel`` puts in ``dist/``, and
a page with the install steps for Windows and Linux (Chinese first, English second)."""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

WHEEL_PATTERN = re.compile(r"^sealbot_ukey_bridge-[0-9A-Za-z_.+-]+\.whl$")
_TEXTS = tomllib.loads((Path(__file__).parent / "install_page.toml").read_text("utf-8"))


def newest_wheel(wheel_dir: Path) -> Path | None:
    wheels = [p for p in wheel_dir.glob("sealbot_ukey_bridge-*.whl") if WHEEL_PATTERN.match(p.name)]
    return max(wheels, key=lambda p: p.stat().st_mtime) if wheels else None


def add_download_routes(router: APIRouter, wheel_dir: Path) -> None:
    @router.get("/install")
    async def install_page(request: Request) -> HTMLResponse:
        server = str(request.base_url).rstrip("/")
        wheel = newest_wheel(wheel_dir)
        if wheel is None:
            body = _TEXTS["missing"]
        else:
            url = f"{server}/bridge/download/{wheel.name}"
            params = {"wheel_url": html.escape(url), "wheel_name": html.escape(wheel.name), "server": server}
            body = _TEXTS["zh"].format(**params) + "<hr>" + _TEXTS["en"].format(**params)
        title = html.escape(_TEXTS["title"])
        return HTMLResponse(
            f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>{title}</title><body>{body}</body></html>"
        )

    @router.get("/download/{name}")
    async def download(name: str) -> Response:
        wheel = newest_wheel(wheel_dir)
        # only the newest built wheel, by its exact name: nothing else under dist is served
        if wheel is None or name != wheel.name:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(wheel, media_type="application/octet-stream", filename=wheel.name)
