"""``python -m bench.instructions`` counts instructions per message under valgrind (a small
size here; the figures are measured by hand)."""

from __future__ import annotations

import shutil

import pytest

from bench.instructions import main
from tests.tools import missing_tool


def test_the_instruction_count_of_a_message_is_the_difference_of_two_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if shutil.which("valgrind") is None:
        missing_tool("valgrind (Debian package valgrind)")
    assert main(["--only", "engine-no-storage", "--small", "1", "--large", "4"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("engine-no-storage"), line
    counted = float(line.split()[1].replace(",", ""))
    # tens of thousands of instructions at the least for a message through the engine; the
    # imports (hundreds of millions) would show if the two runs did not cancel them out
    assert 20_000 < counted < 20_000_000, line


def test_the_larger_run_must_have_more_users() -> None:
    with pytest.raises(SystemExit):
        main(["--small", "10", "--large", "10"])
