"""Staff sign-in: the one function every door calls (console, support inbox via the staff API,
the staff API itself), so that a password guess at any door counts toward the same limits.

The throttling (per-username lock, per-address growing delays) is in ``console.lockout``.
"""

from __future__ import annotations

from sqlalchemy import select, update

from seal_platform.console.lockout import ThrottleKeys, record_failure, record_success, reserve_attempt
from seal_platform.errors import NotAuthenticated
from seal_platform.services import PlatformServices
from seal_platform.staff import StaffUser


class LoginFailed(NotAuthenticated):
    code = "staff_login_failed"


async def sign_in(services: PlatformServices, username: str, password: str, ip: str) -> StaffUser:
    """The active staff member with this password, or ``LoginFailed`` / ``LoginLocked``.

    The same refusal for an unknown username, a disabled one and a wrong password. The returned
    user is detached.
    """
    keys = ThrottleKeys(username=username, ip=ip)
    await reserve_attempt(services, keys)
    hasher = services.password_hasher
    # Read, then verify with no connection held (a hash takes tens of milliseconds), then write:
    # a request holds at most one pooled connection at a time (see ``seal_platform.db``).
    async with services.db.session() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == username.strip()))
    # Verified against when the username is unknown or disabled, so that the answer takes as
    # long as for a real account and usernames cannot be probed by timing.
    stored_hash = user.password_hash if user is not None and user.active else await hasher.dummy_hash_async()
    verified = await hasher.verify_async(stored_hash, password)
    if verified and user is not None and user.active:
        if hasher.needs_rehash(user.password_hash):
            new_hash = await hasher.hash_async(password)
            async with services.db.session() as session:
                await session.execute(
                    update(StaffUser).where(StaffUser.id == user.id).values(password_hash=new_hash)
                )
            user.password_hash = new_hash
        await record_success(services, keys)
        return user
    await record_failure(services, keys)
    raise LoginFailed("用户名或密码错误")
