"""The access token, from ``POST /cgi-bin/stable_token``, cached in the bot database so that
every worker uses the same one.

The stable token endpoint returns the current token to every caller while it is valid (unless
forced), so workers refreshing at the same moment agree instead of invalidating each other,
which is what ``/cgi-bin/token`` would do. Refreshes are retried a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.tables import wechat_tokens

log = logging.getLogger("sealbot.wechat")

# refresh this long before WeChat's expiry, so no call carries a token about to lapse
EARLY = timedelta(minutes=5)


class TokenUnavailable(WeChatError):
    def __init__(self, reason: str, *, errcode: int | None = None) -> None:
        super().__init__(reason)
        self.errcode = errcode


class StableTokenProvider:
    def __init__(
        self,
        *,
        db: AsyncEngine,
        appid: str,
        secret: str,
        api_base_url: str,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attempts: int = 3,
        pause: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.appid = appid
        self.secret = secret
        self.url = f"{api_base_url}stable_token"
        self.http = http
        self.clock = clock
        self.attempts = attempts
        self.pause = pause
        self._sleep = sleep
        self._refreshing = asyncio.Lock()

    async def get(self) -> str:
        cached = await self._cached()
        if cached is not None:
            return cached
        async with self._refreshing:
            cached = await self._cached()  # another task of this worker may have just done it
            if cached is not None:
                return cached
            return await self._refresh(force=False)

    async def check(self) -> str:
        """Asks WeChat now, whatever is cached: the health check must prove that the secret
        works and the API answers. Not forced, so the token other workers use stays valid."""
        return await self._refresh(force=False)

    async def invalidate(self, token: str) -> None:
        """WeChat said this token is not valid (40001/42001): forget it, if still current."""
        async with self.db.begin() as conn:
            await conn.execute(
                wechat_tokens.delete().where(
                    wechat_tokens.c.appid == self.appid, wechat_tokens.c.token == token
                )
            )

    async def _cached(self) -> str | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(wechat_tokens).where(wechat_tokens.c.appid == self.appid))
            ).first()
        if row is None:
            return None
        expires_at = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        return str(row.token) if expires_at - EARLY > self.clock() else None

    async def _refresh(self, *, force: bool) -> str:
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force,
        }
        last: str = "no attempt"
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.http.post(self.url, json=body)
                data: dict[str, Any] = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                last = f"stable_token request failed: {exc!r}"
            else:
                errcode = int(data.get("errcode", 0) or 0)
                if errcode == 0 and data.get("access_token"):
                    token = str(data["access_token"])
                    await self._store(token, int(data.get("expires_in", 7200)))
                    return token
                last = f"stable_token errcode {errcode}: {data.get('errmsg', '')}"
                if errcode in (40013, 40125, 40164, 41002, 41004):
                    # wrong appid/secret or IP not whitelisted: retrying cannot help
                    raise TokenUnavailable(last, errcode=errcode)
            log.warning("access token attempt %d/%d: %s", attempt, self.attempts, last)
            if attempt < self.attempts:
                await self._sleep(self.pause * attempt)
        raise TokenUnavailable(last)

    async def _store(self, token: str, expires_in: int) -> None:
        expires_at = self.clock() + timedelta(seconds=expires_in)
        async with self.db.begin() as conn:
            result = await conn.execute(
                wechat_tokens.update()
                .where(wechat_tokens.c.appid == self.appid)
                .values(token=token, expires_at=expires_at)
            )
            if result.rowcount == 0:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            wechat_tokens.insert().values(
                                appid=self.appid, token=token, expires_at=expires_at
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another worker stored it first; stable_token gave us the same one
