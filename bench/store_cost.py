"""``python -m bench.store_cost``: what the durable store costs the form of ``bench.forms``.

The same engine, flow and messages as ``bench.forms``' engine, on four stores, against
python-telegram-bot in memory, taking turns for ``--rounds`` rounds (best round of each):

- the product: ``SqliteConversationStore`` (group commit on the event loop's thread), replies
  delivered by the ``OutboxDispatcher``, exactly ``bench.forms``' engine;
- a store that does no storage work but passes every call through a thread and back, as the
  store's writer thread did before its batches moved onto the loop (the hop alone);
- a store that does no storage work but sends every call, with its arguments, to another
  process and back, the calls of one event loop iteration together (``bench.process_hop``):
  what the hand-over alone would cost a store whose SQLite work ran in a process of its own;
- a store that does no storage work at all.

The three stores without storage work are measuring instruments, never a product: they keep
nothing on disk, and they still encode and decode the state as the product's store does on the
event loop. The gap between "no storage work" and the product is what the store's SQLite work costs
the event loop; the gap between it and python-telegram-bot is what the engine's own handling
costs. For the product it also prints the event loop's CPU per message, of it the store's
batches, and how long the writer thread was busy against how long it was on a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import queue
import threading
from typing import Any

from bench import engine_forms, ptb_forms
from bench.forms import keep_best
from bench.no_storage import run_without_storage
from bench.process_hop import ProcessHop
from bench.workload import scripts

PRODUCT = "engine, SQLite store (bench.forms)"
HOP_ONLY = "engine, no storage work, one thread hop per call"
PROCESS_HOP = "engine, no storage work, one process round trip"
NO_WORK = "engine, no storage work"
PTB = "PTB ConversationHandler (memory)"


class ThreadHop(threading.Thread):
    """Hands every call to a thread and back, in batches, as the SQLite store's writer thread
    did before its batches moved onto the event loop, and does nothing else (a thread needs no
    encoding: ``argument`` stays here)."""

    def __init__(self) -> None:
        super().__init__(name="bench-hop", daemon=True)
        self.jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )

    async def initialize(self) -> None:
        self.start()

    async def shutdown(self) -> None:
        self.jobs.put(None)
        await asyncio.to_thread(self.join, 10)

    async def round_trip(self, argument: Any, answer: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.jobs.put((loop, future))
        await future
        return answer

    def run(self) -> None:
        while (first := self.jobs.get()) is not None:
            batch = [first]
            while True:
                try:
                    item = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.jobs.put(None)
                    break
                batch.append(item)
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for loop, future in batch:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.store_cost", description=__doc__)
    parser.add_argument("--users", type=int, default=2000, help="users filling the form (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="conversations at once (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of turns; best of each (default 3)")
    return parser.parse_args(argv)


async def run_all(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each contender's best round, with every round's rate under ``"rates"``."""
    user_scripts = scripts(args.users)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(max(1, args.rounds)):
        round_results = {
            PRODUCT: await engine_forms.run(user_scripts, concurrency=args.concurrency),
            HOP_ONLY: await run_without_storage(user_scripts, concurrency=args.concurrency, hop=ThreadHop()),
            PROCESS_HOP: await run_without_storage(
                user_scripts, concurrency=args.concurrency, hop=ProcessHop()
            ),
            NO_WORK: await run_without_storage(user_scripts, concurrency=args.concurrency, hop=None),
            PTB: await ptb_forms.run(user_scripts, concurrency=args.concurrency),
        }
        keep_best(best, round_results)
    return best


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{args.users} users x 10 messages, {args.concurrency} concurrent conversations, "
        f"best of {max(1, args.rounds)} rounds taken in turns"
    ]
    ptb = results[PTB]["messages"] / results[PTB]["seconds"]
    for name, result in results.items():
        rate = result["messages"] / result["seconds"]
        rounds = ", ".join(f"{each:.0f}" for each in result["rates"])
        ratio = "" if name == PTB else f"  {rate / ptb:5.2f}x PTB"
        lines.append(f"{name:50s} {rate:7.0f} msg/s{ratio}  (rounds {rounds})")
    product = results[PRODUCT]
    messages = product["messages"]
    lines.append(
        f"product: event loop CPU {product['loop_cpu_seconds'] / messages * 1e6:.0f} us/message,"
        f" of it the store's SQLite batches {product['store_loop_seconds'] / messages * 1e6:.0f} us;"
        f" writer thread busy {product['writer_busy_seconds']:.2f} s of {product['seconds']:.2f} s,"
        f" on a CPU {product['writer_cpu_seconds']:.2f} s"
    )
    for name in (HOP_ONLY, PROCESS_HOP, NO_WORK):
        lines.append(
            f"{name}: event loop CPU {results[name]['loop_cpu_seconds'] / results[name]['messages'] * 1e6:.0f}"
            " us/message"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    print(report(args, asyncio.run(run_all(args))))


if __name__ == "__main__":
    main()
