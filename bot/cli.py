"""``sealbot``: serve the service, chat in the terminal, migrate, manage channels."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bot import gc_settings
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

SHUTDOWN_GRACE_SECONDS = 5


def public_server_config(app: Any, settings: Settings) -> Any:
    """The public port's server. X-Forwarded-For is honoured only from the configured proxies
    (``SEALBOT_TRUSTED_PROXIES``): uvicorn would otherwise believe any local process."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=bool(settings.trusted_proxy_networks),
        forwarded_allow_ips=settings.trusted_proxies or None,
        # With JSON logs uvicorn's own lines go through the root logger's JSON handler too.
        log_config=None if settings.log_json else uvicorn.config.LOGGING_CONFIG,
        # A web-chat poll of a browser still open waits up to 25 s, and uvicorn waits for
        # requests in progress before it stops: bound that wait. Every answer is in the outbox
        # already, so a poll cut here loses nothing (the page polls again on the next worker).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


def _data_dir_unusable(settings: Settings) -> str | None:
    """Why ``SEALBOT_DATA_DIR`` cannot hold the service's files (None: it can)."""
    import tempfile

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.data_dir):
            pass
    except OSError as exc:
        return f"SEALBOT_DATA_DIR: {settings.data_dir} cannot be used: {exc}"
    return None


def _ports_taken(settings: Settings) -> str | None:
    """Why the service could not listen where it is told to (None: it can)."""
    from observability.listening import why_cannot_listen

    wanted = [("SEALBOT_PORT", settings.host, settings.port)]
    if settings.admin_port:
        wanted.append(("SEALBOT_ADMIN_PORT", settings.admin_host, settings.admin_port))
    for name, host, port in wanted:
        reason = why_cannot_listen(host, port)
        if reason is not None:
            return f"{name}: {reason}"
    return None


async def _databases_unreachable(settings: Settings) -> str | None:
    """Why the bot's database, or the in-process platform's, cannot be used (None: both can)."""
    from dbkit.engine import why_unreachable

    urls = [settings.database_url]
    if settings.platform_mode == "embedded":
        urls.append(settings.embedded_platform_database_url())
    for url in urls:
        reason = await why_unreachable(url)
        if reason is not None:
            return reason
    return None


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import check_configuration, create_app

    # What would stop the start-up is said here, in one line (a ConfigError, exit 2; a data
    # directory, a port or a database that cannot be used or migrated, exit 1), not as the
    # server's "Application startup failed" with a traceback.
    check_configuration(settings)
    unusable = (
        _data_dir_unusable(settings)
        or _ports_taken(settings)
        or asyncio.run(_databases_unreachable(settings))
        or asyncio.run(_migration_refused(settings))
    )
    if unusable is not None:
        print(f"sealbot: {unusable}", file=sys.stderr)
        return 1
    # Objects start-up makes live as long as the process: out of the collector's sight once
    # the service has started, and every pause timed from then on (``gc_settings.serving``).
    app = create_app(settings, after_start=gc_settings.serving)
    gc_settings.configure_for_service()
    log_config = None if settings.log_json else uvicorn.config.LOGGING_CONFIG
    if not settings.admin_port:
        uvicorn.Server(public_server_config(app, settings)).run()
        return 0
    from bot.admin import create_admin_app

    level = settings.log_level.lower()
    public = uvicorn.Server(public_server_config(app, settings))
    admin = uvicorn.Server(
        uvicorn.Config(
            create_admin_app(app),
            host=settings.admin_host,
            port=settings.admin_port,
            log_level=level,
            log_config=log_config,
            lifespan="off",
        )
    )

    async def both() -> None:
        await asyncio.gather(public.serve(), admin.serve())

    asyncio.run(both())
    return 0


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_container
    from bot.channels.terminal import TerminalSender, terminal_loop
    from bot.secure_page.terminal import TerminalPasswordPage

    async def run() -> None:
        sender = TerminalSender(sys.stdout)
        container = await build_container(settings, extra_senders={"terminal": sender})
        try:
            page = TerminalPasswordPage(container.password_pages, args.user, sys.stdout)
            await terminal_loop(
                container.engine,
                container.dispatcher,
                container.engine.media,
                args.user,
                after_replies=page.after_replies,
            )
        finally:
            await container.stop()

    asyncio.run(run())
    return 0


async def _migrate_all(settings: Settings) -> None:
    """The bot's database, and the in-process platform's, brought to this release's schema."""
    from bot import migrate

    await migrate.upgrade(settings.database_url)
    if settings.platform_mode == "embedded":
        from bot.core import embedded_platform_settings
        from seal_platform import migrate as platform_migrate
        from seal_platform.security import field_cipher_of

        # The settings the service gives its in-process platform (its key encrypts fields a
        # data migration moves), read in the one place that decides them.
        platform = embedded_platform_settings(settings)
        await platform_migrate.upgrade(platform.database_url, field_cipher_of(platform))


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from dbkit.migrations import UnknownRevision

    try:
        asyncio.run(_migrate_all(settings))
    except UnknownRevision as exc:
        print(f"sealbot: {exc}", file=sys.stderr)
        return 1
    print("migrations applied")
    return 0


async def _migration_refused(settings: Settings) -> str | None:
    """Migrates before the server starts, so that a database this release cannot bring to its
    schema is one line (None: migrated). The start-up migrates again, finding nothing to do."""
    from dbkit.migrations import MigrationFailed, UnknownRevision

    try:
        await _migrate_all(settings)
    except UnknownRevision as exc:
        return str(exc)
    except MigrationFailed as exc:
        return f"{exc} (`sealbot migrate` shows the whole error)"
    return None


def _staff_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import embedded_platform_services
    from seal_platform.console.bootstrap import create_staff_user, generate_password
    from seal_platform.errors import PlatformError

    if settings.platform_mode == "remote":
        print(
            "sealbot staff-add: the platform runs as its own service: "
            "run `sealbot-platform staff-add` where it runs",
            file=sys.stderr,
        )
        return 2
    if args.generate_password:
        password = generate_password()
    else:
        password = args.password or getpass.getpass("password for the new staff user: ")

    async def run() -> None:
        services = await embedded_platform_services(settings)
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
    except (PlatformError, ConfigError) as exc:
        # One line the operator can act on (weak password, name taken, bad setting), no traceback.
        message = exc.message if isinstance(exc, PlatformError) else str(exc)
        print(f"sealbot staff-add: refused: {message}", file=sys.stderr)
        return 2
    return 0


def _rotate_keys(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.key_rotation import rotate_keys

    counts = asyncio.run(rotate_keys(settings))
    print("re-encrypted: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0


def _check_production(settings: Settings, _args: argparse.Namespace) -> int:
    """Print the production checklist: each demo part still on, or that none is."""
    from bot.production import production_checklist

    lines = production_checklist(settings)
    for line in lines:
        print(line)
    return 1 if any(line.startswith("FAIL") for line in lines) else 0


def _demo(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.demo import DemoError, create_demo, print_demo

    try:
        demo = asyncio.run(create_demo(settings, sys.stdout))
    except DemoError as exc:
        print(f"sealbot demo: {exc}", file=sys.stderr)
        return 1
    print_demo(settings, demo, sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealbot", description="电子印章办理助手 / e-seal assistant")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service (web chat at /chat, platform at /platform)").set_defaults(
        handler=_serve
    )
    chat = sub.add_parser("chat", help="chat with the assistant in this terminal")
    chat.add_argument("--user", default=getpass.getuser(), help="terminal user id (default: your login name)")
    chat.set_defaults(handler=_chat)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(handler=_migrate)
    staff = sub.add_parser("staff-add", help="create a staff user of the embedded platform's console")
    from seal_platform.standalone import add_staff_arguments

    add_staff_arguments(staff)
    staff.set_defaults(handler=_staff_add)
    sub.add_parser(
        "rotate-keys", help="re-encrypt stored files under the current secret key (safe to interrupt)"
    ).set_defaults(handler=_rotate_keys)
    sub.add_parser(
        "check-production", help="list what production mode would refuse (docs/operations.md)"
    ).set_defaults(handler=_check_production)
    sub.add_parser(
        "demo",
        help="create a demo account: a seal on a SoftHSM2 token near expiry, an order in review, an invoice",
    ).set_defaults(handler=_demo)
    from scheduler.cli import add_scheduler_commands

    add_scheduler_commands(sub)
    try:
        from bot.channels.cli_channels import add_channel_commands
    except ImportError:  # channels not installed in this build
        pass
    else:
        add_channel_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"sealbot: configuration error: {exc}", file=sys.stderr)
        return 2
    from observability.logs import configure

    # One handler on the root logger: JSON lines (request and conversation ids, personal
    # numbers masked) with SEALBOT_LOG_JSON=true, readable text otherwise. Like basicConfig,
    # it leaves alone a logging set up by whoever runs us (a test runner, an embedding app).
    if not logging.getLogger().handlers:
        configure(settings.log_level, json_lines=settings.log_json)
    # one line per platform call would drown the service's own log
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs every run of every job at INFO; failures still show as warnings
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    handler = args.handler
    try:
        result: int = handler(settings, args)
    except ConfigError as exc:
        # a setting read by the command itself (a menu file, a channel's keys): one line
        print(f"sealbot: configuration error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
