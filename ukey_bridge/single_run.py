"""One `ukey-bridge run` per pairing: a second one on the same config directory says so and
exits instead of fighting the first for the same jobs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ukey_bridge.errors import BridgeError

LOCK_FILE = "run.lock"


class AlreadyRunning(BridgeError):
    """Another `ukey-bridge run` holds this pairing."""


def _try_lock(handle: IO[bytes]) -> bool:
    if sys.platform == "win32":  # mypy and the interpreter both pick one branch per platform
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    else:
        import fcntl

        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


@contextmanager
def only_run(config_dir: Path) -> Iterator[None]:
    """Held while the bridge runs; the OS releases it when the process ends, even on a crash."""
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(config_dir / LOCK_FILE, "a+b") as handle:
        if not _try_lock(handle):
            raise AlreadyRunning("another ukey-bridge run holds this pairing")
        yield
