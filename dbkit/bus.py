"""One event bus across workers, on what the deployment already has.

Several workers (processes, hosts) must hear about the same things: a UKey bridge connected to
worker B must learn of a job submitted on worker A, a web-chat long poll on one worker must
wake when a reply was committed by another, the support inbox must see every new ticket. The
bus carries small notifications ("something changed for this key"), never the data itself: the
data is in the database, and every consumer also sweeps it periodically, so a notification lost
while the bus reconnects delays an answer but loses nothing.

Three backends behind one protocol:

- ``InProcessBus``: one process (the embedded SQLite default).
- ``PostgresBus``: ``LISTEN``/``NOTIFY`` on one channel, the default on PostgreSQL.
- ``RedisBus``: pub/sub, when Redis is configured.

Each keeps one listening connection, reconnects by itself with growing pauses, and reports
``healthy`` for readiness checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# NOTIFY payloads are limited to 8000 bytes; notifications are meant to be far smaller.
MAX_PAYLOAD_BYTES = 7900
PG_CHANNEL = "sealbot_bus"


class BusError(Exception):
    """The bus could not carry a notification (too large, or the backend is down)."""


@dataclass(frozen=True)
class Notification:
    topic: str
    data: Mapping[str, Any]


class Subscription:
    """Notifications for a set of topics, as an async iterator; ``close()`` ends it."""

    def __init__(self, bus: _FanOut, topics: frozenset[str]) -> None:
        self._bus = bus
        self.topics = topics
        self._queue: asyncio.Queue[Notification | None] = asyncio.Queue(maxsize=1000)
        self.dropped = 0

    def _offer(self, notification: Notification) -> None:
        try:
            self._queue.put_nowait(notification)
        except asyncio.QueueFull:
            # A stalled consumer must not hold up the others; its periodic sweep catches up.
            self.dropped += 1

    async def get(self, wait_seconds: float | None = None) -> Notification | None:
        """The next notification, or None on timeout or when closed."""
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None

    def close(self) -> None:
        self._bus._unsubscribe(self)
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Notification]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Notification]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class EventBus(Protocol):
    @property
    def healthy(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, data: Mapping[str, Any]) -> None: ...

    def subscribe(self, *topics: str) -> Subscription: ...


def _encode(topic: str, data: Mapping[str, Any]) -> str:
    payload = json.dumps({"t": topic, "d": dict(data)}, ensure_ascii=False, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise BusError(f"notification for {topic!r} is too large for the bus")
    return payload


def _decode(payload: str | bytes) -> Notification | None:
    try:
        message = json.loads(payload)
        return Notification(topic=str(message["t"]), data=dict(message["d"]))
    except (ValueError, KeyError, TypeError):
        log.warning("event bus: ignored a malformed notification")
        return None


@dataclass
class _FanOut:
    """Delivery to this process's subscribers, shared by every backend."""

    subscribers: dict[str, set[Subscription]] = field(default_factory=lambda: defaultdict(set))

    def subscribe(self, *topics: str) -> Subscription:
        subscription = Subscription(self, frozenset(topics))
        for topic in topics:
            self.subscribers[topic].add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        for topic in subscription.topics:
            self.subscribers[topic].discard(subscription)

    def deliver(self, notification: Notification) -> None:
        for subscription in list(self.subscribers.get(notification.topic, ())):
            subscription._offer(notification)


class InProcessBus:
    """Every publisher and subscriber in one process."""

    def __init__(self) -> None:
        self._fan_out = _FanOut()

    @property
    def healthy(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        _encode(topic, data)  # the same size rule as the shared backends
        self._fan_out.deliver(Notification(topic, dict(data)))

    def subscribe(self, *topics: str) -> Subscription:
        return self._fan_out.subscribe(*topics)


class _ReconnectingBus:
    """Template for the shared backends: one listener task that reconnects with backoff."""

    name = "bus"

    def __init__(self, *, max_pause: float = 10.0) -> None:
        self._fan_out = _FanOut()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        self._max_pause = max_pause
        # Names the listening connection on the server, so operators (and tests) can find it.
        self.listener_name = f"sealbot-bus-{secrets.token_hex(4)}"

    @property
    def healthy(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5)

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._connected.clear()
        await self._close_publisher()

    def subscribe(self, *topics: str) -> Subscription:
        return self._fan_out.subscribe(*topics)

    async def _run(self) -> None:
        pause = 0.2
        while not self._stopping:
            try:
                await self._listen()
                pause = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any driver error means the same: reconnect
                if self._connected.is_set():
                    log.warning("event bus (%s) lost its connection: %s; reconnecting", self.name, exc)
                self._connected.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._max_pause)

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _close_publisher(self) -> None:
        return None


class PostgresBus(_ReconnectingBus):
    """``LISTEN``/``NOTIFY`` on one channel; the topic travels in the payload."""

    name = "postgresql"

    def __init__(self, dsn: str, *, max_pause: float = 10.0) -> None:
        super().__init__(max_pause=max_pause)
        self._dsn = _plain_dsn(dsn)
        self._publisher: Any = None
        self._publish_lock = asyncio.Lock()

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(
            self._dsn, timeout=5, server_settings={"application_name": self.listener_name}
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: lost.set())

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            notification = _decode(payload)
            if notification is not None:
                self._fan_out.deliver(notification)

        try:
            await connection.add_listener(PG_CHANNEL, on_notify)
            self._connected.set()
            log.info("event bus (postgresql) listening")
            while not lost.is_set():
                # A dead TCP peer is not always reported: ask the server now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 5)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=5)
            raise BusError("listening connection closed")
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    async def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        import asyncpg

        payload = _encode(topic, data)
        async with self._publish_lock:
            for attempt in (1, 2):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(self._dsn, timeout=5)
                    await self._publisher.execute("SELECT pg_notify($1, $2)", PG_CHANNEL, payload)
                    return
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    self._publisher = None
                    if attempt == 2:
                        raise BusError("event bus (postgresql) unavailable") from exc

    async def _close_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.close(timeout=2)
            self._publisher = None


class RedisBus(_ReconnectingBus):
    """Redis pub/sub, one channel per topic under a prefix."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "sealbot:bus:", max_pause: float = 10.0) -> None:
        super().__init__(max_pause=max_pause)
        import redis.asyncio as aioredis

        self._url = url
        self._prefix = prefix
        self._publisher = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(self._url, socket_connect_timeout=5, client_name=self.listener_name)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(self._prefix + "*")
            self._connected.set()
            log.info("event bus (redis) listening")
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    await pubsub.ping()
                    continue
                if message.get("type") != "pmessage":
                    continue  # the answer to our ping, not a notification
                notification = _decode(message["data"])
                if notification is not None:
                    self._fan_out.deliver(notification)
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            with contextlib.suppress(Exception):
                await client.aclose()

    async def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        import redis.exceptions

        payload = _encode(topic, data)
        try:
            await self._publisher.publish(self._prefix + topic, payload)
        except (OSError, redis.exceptions.RedisError) as exc:
            raise BusError("event bus (redis) unavailable") from exc

    async def _close_publisher(self) -> None:
        with contextlib.suppress(Exception):
            await self._publisher.aclose()


# Published by the platform after a commit that added events to its feed (no data: consumers
# read the feed). The platform and the bot share this name, hence here.
PLATFORM_EVENTS_TOPIC = "platform.events"


class Announcer:
    """Publishes on ``topic`` from synchronous code, such as a listener called inside a commit:
    the publication is scheduled on the running loop, not awaited. A bus that is down is logged
    once per outage (``fallback`` says what covers meanwhile: consumers also sweep)."""

    def __init__(
        self,
        bus: EventBus,
        topic: str,
        *,
        fallback: str = "consumers will sweep",
        logger: logging.Logger = log,
    ) -> None:
        self._bus = bus
        self.topic = topic
        self._fallback = fallback
        self._log = logger
        self._pending: set[asyncio.Task[None]] = set()
        self._failing = False

    def __call__(self) -> None:
        """Announce with no data (the platform's event notifier calls it so)."""
        self.announce({})

    def announce(self, data: Mapping[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous tool): nobody is listening here
            return
        task = loop.create_task(self._publish(dict(data)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, data: Mapping[str, Any]) -> None:
        try:
            await self._bus.publish(self.topic, data)
        except BusError as exc:
            if not self._failing:
                self._log.warning("%s: %s; %s", self.topic, exc, self._fallback)
            self._failing = True
        else:
            if self._failing:
                self._log.info("%s: the event bus carries it again", self.topic)
            self._failing = False

    async def close(self) -> None:
        """Wait for the publications already scheduled."""
        if self._pending:
            await asyncio.gather(*set(self._pending), return_exceptions=True)


class TopicPeer:
    """One worker's place on a topic every worker both announces on and listens to.

    ``announce`` publishes from synchronous code (an after-commit hook) without waiting; the
    worker's own notifications come back through the bus and are skipped by their origin, since
    it acted on them already. ``start`` hands the other workers' notifications to ``on_notice``,
    one at a time and in order (awaited when it is a coroutine function); one that raises is
    logged and the next is handled. A peer that never announces is a listener to the topic.
    A bus that is down is logged once per outage (``fallback`` says what covers meanwhile:
    the users of a topic also sweep)."""

    def __init__(
        self,
        bus: EventBus,
        topic: str,
        on_notice: Callable[[Mapping[str, Any]], Awaitable[None] | None],
        *,
        fallback: str,
        logger: logging.Logger = log,
    ) -> None:
        self._bus = bus
        self.topic = topic
        self._on_notice = on_notice
        self._log = logger
        self.origin = secrets.token_hex(6)
        self._announcer = Announcer(bus, topic, fallback=fallback, logger=logger)
        self._subscription: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None

    def announce(self, data: Mapping[str, Any]) -> None:
        self._announcer.announce({**data, "from": self.origin})

    async def start(self) -> None:
        if self._listener is None:
            self._subscription = self._bus.subscribe(self.topic)
            self._listener = asyncio.create_task(self._listen(self._subscription), name=f"bus-{self.topic}")

    async def _listen(self, subscription: Subscription) -> None:
        async for notification in subscription:
            if notification.data.get("from") == self.origin:
                continue
            try:
                handled = self._on_notice(notification.data)
                if handled is not None:
                    await handled
            except Exception:
                self._log.exception("%s: a notification was not handled", self.topic)

    async def stop(self) -> None:
        """Stop listening, then wait for the publications already scheduled."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._announcer.close()


def _plain_dsn(url: str) -> str:
    """asyncpg takes ``postgresql://``; settings may name SQLAlchemy's ``+asyncpg`` driver."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def bus_for(database_url: str, redis_url: str | None = None) -> EventBus:
    """The bus a deployment gets from what it already has: Redis if configured, else
    PostgreSQL when the database is PostgreSQL, else one process."""
    if redis_url:
        return RedisBus(redis_url)
    if database_url.startswith("postgresql"):
        return PostgresBus(database_url)
    return InProcessBus()
