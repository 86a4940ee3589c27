"""A hand-over to another process and back, batched per event loop iteration: the measuring
instrument ``bench.store_cost`` uses for a store whose SQLite work runs in a process of its own.

The calls an event loop makes in one iteration go to the child as one pickled frame down a
pipe; the child decodes it and answers every call with one frame back, which the loop reads
when the pipe is readable. Each call carries what a real store would send (its arguments) and
what the real one would answer (``answer``), so both directions pay the encoding a process
store would pay; the child does nothing else. ``python -m bench.process_hop`` is the child.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import subprocess
import sys
from typing import Any

_LENGTH = struct.Struct("!I")


def _frames(buffer: bytearray) -> list[bytes]:
    """The whole frames at the start of ``buffer``, taken out of it."""
    frames = []
    while len(buffer) >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer)
        end = _LENGTH.size + size
        if len(buffer) < end:
            break
        frames.append(bytes(buffer[_LENGTH.size : end]))
        del buffer[:end]
    return frames


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ProcessHop:
    """The parent's side: ``await hop.round_trip(argument, answer)`` returns ``answer`` after
    it has been to the child and back."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._to_child = -1  # the pipes' file descriptors, once started
        self._from_child = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._outgoing: list[tuple[int, Any, Any]] = []
        self._received = bytearray()
        self._next = 0

    async def initialize(self) -> None:
        self._loop = asyncio.get_running_loop()
        command = [sys.executable, "-m", "bench.process_hop"]
        child = await asyncio.to_thread(
            subprocess.Popen, command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        if child.stdin is None or child.stdout is None:  # never: both were asked for
            raise RuntimeError("the hop process has no pipes")
        self._child, self._to_child, self._from_child = child, child.stdin.fileno(), child.stdout.fileno()
        os.set_blocking(self._from_child, False)
        self._loop.add_reader(self._from_child, self._readable)

    async def shutdown(self) -> None:
        child, self._child = self._child, None
        if child is None or self._loop is None:
            return
        self._loop.remove_reader(self._from_child)
        await asyncio.to_thread(child.communicate, timeout=10)  # closes stdin: the child ends

    async def round_trip(self, argument: Any, answer: Any) -> Any:
        assert self._loop is not None
        self._next += 1
        future = self._loop.create_future()
        self._waiting[self._next] = future
        if not self._outgoing:  # the first call of this iteration sends the lot after it
            self._loop.call_soon(self._send)
        self._outgoing.append((self._next, argument, answer))
        return await future

    def _send(self) -> None:
        batch, self._outgoing = self._outgoing, []
        # A blocking write: the child reads as fast as it can, and a frame is a few kilobytes.
        _write_all(self._to_child, _frame(batch))

    def _readable(self) -> None:
        chunk = os.read(self._from_child, 1 << 16)
        if not chunk:  # the child is gone: nobody will answer
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the hop process ended"))
            self._waiting.clear()
            return
        self._received += chunk
        for frame in _frames(self._received):
            for call_id, answer in pickle.loads(frame):  # noqa: S301 - our own child's frames
                future = self._waiting.pop(call_id)
                if not future.done():
                    future.set_result(answer)


def main() -> None:
    """The child: answer every frame of calls with one frame of their answers."""
    received = bytearray()
    while chunk := os.read(0, 1 << 16):
        received += chunk
        answers = [
            [(call_id, answer) for call_id, _argument, answer in pickle.loads(frame)]  # noqa: S301 - our parent's
            for frame in _frames(received)
        ]
        if answers:
            _write_all(1, b"".join(_frame(each) for each in answers))


if __name__ == "__main__":
    main()
