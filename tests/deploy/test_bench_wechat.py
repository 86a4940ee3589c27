"""``python -m bench.wechat`` runs end to end at a small size (CI does not bench): it starts the
service as ``sealbot serve`` would, plays WeChat's server against it, and every reply is seen
once, none over WeChat's 5 s."""

from __future__ import annotations

import pytest

from bench.wechat import main


def test_the_wechat_benchmark_serves_every_message_once_within_the_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--users", "6", "--messages", "3"]) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 2, printed  # the header and one row
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    row = dict(zip(header, (cell.strip() for cell in table[1].strip("|").split("|")), strict=True))
    assert float(row["requests/s"]) > 0
    assert row["first tries >= 5 s"] == "0 of 18"
    assert row["unseen"] == "0"
    assert row["seen twice"] == "0"
    # every message was answered, passively or through the customer-service API
    assert int(row["passive"]) + int(row["via 客服"]) == 18
    assert "garbage collector while serving:" in printed
