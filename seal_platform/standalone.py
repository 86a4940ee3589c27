"""``sealbot-platform``: the seal platform as a separate service (the bot's remote mode).

The embedded default mounts the platform inside the bot's process; a deployment with several
bot workers on several hosts runs it once (or a few times behind the same proxy) as its own
service, with its settings from the environment (prefix ``PLATFORM_``), and points every bot
worker at it with ``SEALBOT_PLATFORM_MODE=remote`` and ``SEALBOT_PLATFORM_URL``.

    sealbot-platform migrate     # apply the platform's migrations
    sealbot-platform serve       # migrate, then serve the API and the staff console
    sealbot-platform staff-add admin --roles admin --generate-password   # the first admin
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import ValidationError

from dbkit.migrations import MigrationFailed, UnknownRevision
from observability.security_headers import SecurityHeaders
from observability.settings_errors import first_problem
from seal_platform import migrate
from seal_platform.security import field_cipher_of
from seal_platform.settings import PlatformSettings

log = logging.getLogger(__name__)


def load_platform_settings() -> PlatformSettings:
    """Settings from the environment; a bad one raises ``ValueError`` naming it in one line."""
    try:
        settings = PlatformSettings()
    except ValidationError as exc:
        raise ValueError(first_problem(exc, PlatformSettings.model_config.get("env_prefix", ""))) from exc
    settings.check_production()
    return settings


async def prepare(settings: PlatformSettings) -> None:
    """What must exist before the first request: the schema at head, the CA (created once for
    every process on every host, under a database lock) and, on the embedded default only, a
    first admin (see ``console.bootstrap``)."""
    from seal_platform.app import build_platform_services
    from seal_platform.console.bootstrap import ensure_bootstrap_admin
    from seal_platform.seals import certificate_authority

    await migrate.upgrade(settings.database_url, field_cipher_of(settings))
    services = build_platform_services(settings)
    try:
        await certificate_authority(services)
        await ensure_bootstrap_admin(services)
    finally:
        # The server's event loop opens its own connections; none may outlive this one.
        await services.aclose()


def create_standalone_app(settings: PlatformSettings) -> FastAPI:
    from seal_platform.app import build_platform_services, create_platform_app

    app = create_platform_app(build_platform_services(settings), owns_services=True)
    # Embedded, the bot's app adds these; served on its own, the platform (console, pay page,
    # API) must not be framed or sniffed either.
    https = settings.public_base_url.startswith("https://")
    app.add_middleware(SecurityHeaders, prefixes=("/",), https=https)
    return app


def _serve(settings: PlatformSettings, args: argparse.Namespace) -> int:
    import uvicorn

    from dbkit.engine import why_unreachable
    from observability.listening import why_cannot_listen

    # A port another program holds is one line, before migrations and start-up.
    taken = why_cannot_listen(args.host, args.port)
    if taken is not None:
        print(f"sealbot-platform: {taken}", file=sys.stderr)
        return 1
    # A database that cannot be used is one line naming it, not migrate's traceback.
    unreachable = asyncio.run(why_unreachable(settings.database_url))
    if unreachable is not None:
        print(f"sealbot-platform: {unreachable}", file=sys.stderr)
        return 1
    try:
        asyncio.run(prepare(settings))
    except UnknownRevision as exc:
        print(f"sealbot-platform: {exc}", file=sys.stderr)
        return 1
    except MigrationFailed as exc:
        print(f"sealbot-platform: {exc} (`sealbot-platform migrate` shows the whole error)", file=sys.stderr)
        return 1
    uvicorn.run(create_standalone_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def _migrate(settings: PlatformSettings, _args: argparse.Namespace) -> int:
    try:
        asyncio.run(migrate.upgrade(settings.database_url, field_cipher_of(settings)))
    except UnknownRevision as exc:
        print(f"sealbot-platform: {exc}", file=sys.stderr)
        return 1
    print("platform migrations applied")
    return 0


def _staff_add(settings: PlatformSettings, args: argparse.Namespace) -> int:
    from seal_platform.app import build_platform_services
    from seal_platform.console.bootstrap import create_staff_user, generate_password
    from seal_platform.errors import PlatformError

    if args.generate_password:
        password = generate_password()
    else:
        password = args.password or getpass.getpass("password for the new staff user: ")

    async def run() -> None:
        await migrate.upgrade(settings.database_url, field_cipher_of(settings))
        services = build_platform_services(settings)
        try:
            user = await create_staff_user(services, args.username, password, args.roles)
        finally:
            await services.aclose()
        print(f"staff user {user.username} created with roles {', '.join(args.roles)}")
        if args.generate_password:
            # Shown here once and stored nowhere else: note it now.
            print(f"password (shown once): {password}")

    try:
        asyncio.run(run())
    except PlatformError as exc:
        print(f"sealbot-platform staff-add: refused: {exc.message}", file=sys.stderr)
        return 2
    return 0


def add_staff_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``staff-add``, the same for ``sealbot`` and ``sealbot-platform``."""
    from seal_platform.staff import StaffRole

    parser.add_argument("username")
    parser.add_argument(
        "--roles",
        nargs="+",
        default=["support"],
        choices=[role.value for role in StaffRole],
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password", help="prompted for when omitted")
    secret.add_argument(
        "--generate-password", action="store_true", help="make a random password and print it once"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealbot-platform", description="电子印章平台 / seal platform service"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve the platform API and staff console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.set_defaults(handler=_serve)
    sub.add_parser("migrate", help="apply the platform's database migrations").set_defaults(handler=_migrate)
    staff = sub.add_parser("staff-add", help="create a staff user of the console (the first admin too)")
    add_staff_arguments(staff)
    staff.set_defaults(handler=_staff_add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_platform_settings()
    except ValueError as exc:
        print(f"sealbot-platform: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.handler(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
