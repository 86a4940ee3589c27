"""``sealbot reminders-preview --days N``: what the reminder job would send, without sending;
``sealbot reminders run-now``: plan and send what is due now, printing each decision.

``add_scheduler_commands(subparsers)`` adds the command to the ``sealbot`` parser; its handler
follows the CLI's ``handler(settings, args) -> exit code`` convention.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, TextIO

from scheduler.deliveries import DeliveryStore
from scheduler.preview import PreviewLine, preview_reminders, render_table
from scheduler.reminders import PassReport
from scheduler.settings import SchedulerSettings

if TYPE_CHECKING:
    from bot.settings import Settings


def add_scheduler_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    preview = subparsers.add_parser(
        "reminders-preview", help="show the expiry reminders of the next days, without sending any"
    )
    preview.add_argument("--days", type=float, default=7.0, help="how many days ahead (default 7)")
    preview.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    preview.set_defaults(handler=reminders_preview_command)

    reminders = subparsers.add_parser("reminders", help="expiry reminders")
    actions = reminders.add_subparsers(dest="reminders_action", required=True)
    run_now = actions.add_parser(
        "run-now", help="plan and send the reminders due now, printing each decision and channel"
    )
    run_now.set_defaults(handler=reminders_run_now_command)


def reminders_run_now_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run_now(settings, out=sys.stdout))


async def _run_now(settings: Settings, *, out: TextIO) -> int:
    from bot.app import build_container

    container = await build_container(settings)
    try:
        job = container.reminders
        report = await job.run_once(explain=True)
        # Chat reminders were queued: deliver them now and record what became of them.
        await container.dispatcher.drain()
        synced = await job.sync_outbox(container.engine.clock.now())
        write_run_report(report, synced, out)
    finally:
        await container.stop()
    return 0


def write_run_report(report: PassReport, synced: int, out: TextIO) -> None:
    for line in report.decisions:
        print(line, file=out)
    outcomes = ", ".join(f"{status}: {n}" for status, n in sorted(report.outcomes.items())) or "nothing due"
    kind = "full" if report.full_sweep else "incremental"
    print(f"planned {report.planned} ({kind} pass); {outcomes}; outbox outcomes recorded: {synced}", file=out)


def reminders_preview_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.days <= 0:
        print("reminders-preview: --days must be positive", file=sys.stderr)
        return 2
    return asyncio.run(_preview(settings, days=args.days, as_json=args.json, out=sys.stdout))


async def _preview(settings: Settings, *, days: float, as_json: bool, out: TextIO) -> int:
    # The composition root builds the platform client and store as the service would.
    from bot.app import build_container
    from platform_client.reminders import RemindersAPI

    scheduler_settings = SchedulerSettings()
    container = await build_container(settings)
    try:
        lines = await preview_reminders(
            platform=RemindersAPI(container.platform),
            store=container.store,
            deliveries=DeliveryStore(container.db),
            settings=scheduler_settings,
            now=container.engine.clock.now(),
            days=days,
        )
    finally:
        await container.stop()
    write_preview(lines, out, as_json=as_json, zone=scheduler_settings.default_timezone)
    return 0


def write_preview(lines: list[PreviewLine], out: TextIO, *, as_json: bool, zone: str) -> None:
    if not as_json:
        print(render_table(lines, zone), file=out)
        return
    for line in lines:
        record = {
            "send_at": line.send_at.isoformat(),
            "seal_id": line.seal_id,
            "seal_name": line.seal_name,
            "seal_kind": line.seal_kind,
            "threshold": line.threshold,
            "valid_to": line.valid_to.isoformat(),
            "account_id": line.account_id,
            "channel_key": line.channel_key,
            "note": line.note,
        }
        print(json.dumps(record, ensure_ascii=False), file=out)
