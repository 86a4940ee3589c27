"""Prometheus metrics: one process, and several workers adding up through multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from observability.metrics import Metrics
from tests.fixtures.metrics import read_samples


def test_one_process_reports_what_it_counted() -> None:
    metrics = Metrics()
    metrics.messages_in.labels(channel="wechat").inc(3)
    metrics.deliveries_failed.labels(channel="telegram", retryable="true").inc()
    metrics.platform_call.labels(method="POST", route="/v1/accounts", outcome="ok").observe(0.02)
    samples = read_samples(metrics.render().decode())
    assert samples[("sealbot_messages_in_total", (("channel", "wechat"),))] == 3
    assert samples[("sealbot_deliveries_failed_total", (("channel", "telegram"), ("retryable", "true")))] == 1
    key = (
        "sealbot_platform_call_seconds_count",
        (("method", "POST"), ("outcome", "ok"), ("route", "/v1/accounts")),
    )
    assert samples[key] == 1


def test_two_instances_do_not_share_values() -> None:
    """Each composition root gets its own registry: tests and embedded apps stay apart."""
    first, second = Metrics(), Metrics()
    first.sms.labels(purpose="register", outcome="sent").inc()
    samples = read_samples(second.render().decode())
    assert ("sealbot_sms_total", (("outcome", "sent"), ("purpose", "register"))) not in samples


WORKER = """
from observability.metrics import Metrics
metrics = Metrics()
metrics.messages_in.labels(channel="webchat").inc({n})
metrics.reminders.labels(outcome="sent", channel="sms").inc()
"""

RENDER = """
import sys
from observability.metrics import Metrics
sys.stdout.write(Metrics().render().decode())
"""


def test_workers_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    root = Path(__file__).resolve().parents[2]
    for n in (2, 5):
        subprocess.run(  # noqa: S603 - this interpreter and the fixed scripts above
            [sys.executable, "-c", WORKER.format(n=n)], env=env, cwd=root, check=True, timeout=60
        )
    rendered = subprocess.run(  # noqa: S603 - this interpreter and the fixed script above
        [sys.executable, "-c", RENDER],
        env=env,
        cwd=root,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = read_samples(rendered)
    assert samples[("sealbot_messages_in_total", (("channel", "webchat"),))] == 7
    assert samples[("sealbot_reminders_total", (("channel", "sms"), ("outcome", "sent")))] == 2
