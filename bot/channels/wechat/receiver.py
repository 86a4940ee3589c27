"""From a signed callback to an answer: verify, parse, decide, act within the 5 seconds.

Order matters: size cap, query signature (constant time), timestamp window, nonce replay,
and only then XML parsing (and, in safe mode, the ``msg_signature`` check before decrypting).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.channels.notices import ChannelNotices
from bot.channels.wechat.api import MediaTooLarge, WeChatApi
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.errors import WeChatError
from bot.channels.wechat.inbound import (
    ConsentChange,
    Decision,
    ForEngine,
    Ignored,
    Interaction,
    KfSessionClosed,
    MediaToFetch,
    Notice,
    decide,
)
from bot.channels.wechat.passive import PassiveAnswers, PassiveOffer
from bot.channels.wechat.quota import CustomerServiceQuota
from bot.channels.wechat.render import passive_text, passive_xml, transfer_xml
from bot.channels.wechat.replay import NonceLedger
from bot.channels.wechat.sender import WeChatSender
from bot.channels.wechat.settings import WeChatSettings
from bot.channels.wechat.signature import check_fresh, verify_query
from bot.channels.wechat.subscriptions import SubscriptionConsents
from bot.channels.wechat.xml_safety import parse_xml
from bot.engine.in_band import AnswerWindow
from bot.engine.media import sniff
from bot.engine.messages import ConversationKey, Inbound, OutboundMessage, Reply
from bot.engine.ports import Clock, MediaStore
from bot.engine.runtime import Engine
from bot.engine.state import Owner
from bot.engine.store import SideWrite, TableWrites
from bot.errors import DeliveryFailed, RequestRejected, SealbotError

log = logging.getLogger("sealbot.wechat")

ACCEPTED_UPLOADS = frozenset({"image/jpeg", "image/png", "application/pdf"})


# A passive reply that hands the session to WeChat's own customer-service (客服) system.
TRANSFER = object()
# The owner a conversation gets while WeChat's 客服 system has it: the bot stays silent.
WECHAT_KF_OWNER = "staff:wechat-kf"


@dataclass(frozen=True)
class Opened:
    """A verified callback: its message, whether it came encrypted, and the nonce row it owes
    (None: recorded already, or written on its own where processes share the database)."""

    message: dict[str, Any]
    encrypted: bool
    nonce: SideWrite | None = None


class _Owed:
    """The writes a callback owes (its nonce, the allowance it opened): committed with its
    message by the engine, or on their own when no handling commits. One write transaction
    per message on the embedded default, not one per bookkeeping row."""

    def __init__(self, nonces: NonceLedger, nonce: SideWrite | None) -> None:
        self._nonces = nonces
        self._nonce = nonce
        self._writes = [nonce] if nonce is not None else []
        self.handed_over = False  # to the work that handles the message, which settles

    def add(self, write: SideWrite) -> None:
        self._writes.append(write)

    def pending(self) -> list[SideWrite]:
        """For the engine to commit with the message (``committed`` once it has)."""
        return list(self._writes)

    def committed(self) -> None:
        self._writes = []

    async def write_alone(self, writes: TableWrites) -> None:
        for write in self.pending():
            await writes.write(write.statement, write.params)
        self.committed()

    def settle(self) -> None:
        """The handling is over: the database answers for the nonce from now on."""
        self._nonces.settle(self._nonce)


@dataclass(frozen=True)
class Answer:
    """What the webhook sends back: ``text`` as a passive reply, "success", or the transfer
    to WeChat's own 客服 system."""

    to_user: str
    from_user: str
    text: str | None
    transfer: bool = False


def _megabytes(limit: int) -> str:
    return f"{limit // 1024} KB" if limit < 1024 * 1024 else f"{limit / (1024 * 1024):g} MB"


class WeChatReceiver:
    def __init__(
        self,
        *,
        settings: WeChatSettings,
        engine: Engine,
        media: MediaStore,
        api: WeChatApi,
        nonces: NonceLedger,
        passive: PassiveAnswers,
        quota: CustomerServiceQuota,
        consents: SubscriptionConsents,
        sender: WeChatSender,
        notices: ChannelNotices,
        cipher: MessageCipher | None,
        clock: Clock,
        background: Callable[[Coroutine[Any, Any, Any]], None],
        transfer_to_kf: Callable[[ConversationKey], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.media = media
        self.api = api
        self.nonces = nonces
        self.passive = passive
        self.quota = quota
        self.consents = consents
        self.sender = sender
        self.notices = notices
        self.cipher = cipher
        self.clock = clock
        self._background = background
        self.token = settings.token.get_secret_value()
        # The support desk's rule: whether a hand-off goes to WeChat's own 客服 system.
        self.transfer_to_kf = transfer_to_kf

    # ---- verification -----------------------------------------------------------------------

    def verify_url(self, query: Mapping[str, str]) -> str:
        """The GET handshake: echo ``echostr`` back when the query is signed and fresh."""
        verify_query(self.token, query.get("signature"), query.get("timestamp"), query.get("nonce"))
        check_fresh(query["timestamp"], self.clock.now().timestamp(), self.settings.timestamp_window)
        echostr = query.get("echostr", "")
        if not echostr or len(echostr) > 128:
            raise RequestRejected("no echostr", status=400)
        return echostr

    async def open(self, query: Mapping[str, str], body: bytes) -> Opened:
        """The verified message, whether it came encrypted, and the nonce row it owes."""
        timestamp, nonce = query.get("timestamp"), query.get("nonce")
        verify_query(self.token, query.get("signature"), timestamp, nonce)
        assert timestamp is not None
        assert nonce is not None
        now = self.clock.now()
        check_fresh(timestamp, now.timestamp(), self.settings.timestamp_window)
        owed = await self.nonces.check(nonce, timestamp, body, now)
        try:
            outer = parse_xml(body, limit=self.settings.max_body_bytes)
            encrypted = outer.get("Encrypt")
            if encrypted is None:
                if query.get("encrypt_type") == "aes":
                    raise RequestRejected("safe-mode request without Encrypt", status=400)
                return Opened(outer, False, owed)
            if self.cipher is None:
                raise RequestRejected("encrypted message but no EncodingAESKey configured", status=400)
            if not isinstance(encrypted, str):
                raise RequestRejected("bad Encrypt element", status=400)
            plain = self.cipher.decrypt(encrypted, query.get("msg_signature"), timestamp, nonce)
            return Opened(parse_xml(plain, limit=self.settings.max_body_bytes), True, owed)
        except RequestRejected:
            # refused: nothing is stored, so another body may not take this nonce either way
            self.nonces.settle(owed)
            raise

    # ---- handling ---------------------------------------------------------------------------

    def deadline_for(self, arrived: datetime) -> datetime:
        """The one deadline of a callback, counted from its arrival: a reply claimed later
        could reach WeChat after its 5 s and would never be shown."""
        return arrived + timedelta(seconds=self.settings.passive_budget)

    async def handle(self, opened: Opened, *, deadline: datetime) -> Answer:
        message = opened.message
        decision = decide(message, self.settings.appid)
        reply_to = str(message.get("FromUserName", ""))
        our_id = str(message.get("ToUserName", ""))
        owed = _Owed(self.nonces, opened.nonce)
        try:
            text = await self._act(decision, deadline, owed)
        except BaseException:
            if not owed.handed_over:  # the work settles what it was given, whenever it ends
                owed.settle()
            raise
        if text is TRANSFER:
            return Answer(reply_to, our_id, None, transfer=True)
        return Answer(reply_to, our_id, text if isinstance(text, str) else None)

    async def _act(self, decision: Decision, deadline: datetime, owed: _Owed) -> str | object | None:
        if not isinstance(decision, ForEngine | MediaToFetch):
            await owed.write_alone(self.engine.store)
            owed.settle()
        if isinstance(decision, Ignored):
            log.debug("wechat %s ignored: %s", decision.delivery_id, decision.reason)
            return None
        if isinstance(decision, ConsentChange):
            now = self.clock.now()
            for template_id, status in decision.changes:
                await self.consents.record(decision.key.user_id, template_id, status, now)
            return None
        if isinstance(decision, Notice):
            return await self._notice(decision.key, decision.name, **decision.params)
        if isinstance(decision, KfSessionClosed):
            # Only a chat WeChat's 客服 held goes back: one our own desk holds stays with staff.
            if await self.engine.store.owner_of(decision.key) == WECHAT_KF_OWNER:
                await self.engine.set_owner(decision.key, Owner.BOT)
            return None
        interaction = decision.interaction if isinstance(decision, ForEngine) else Interaction.MESSAGE
        if await self.engine.store.owner_of(decision.key) == WECHAT_KF_OWNER:
            # While WeChat's 客服 holds a session the user's messages bypass this URL: one that
            # reaches us means the session ended (closed, or 30 minutes passed) even if the
            # kf_close_session event was lost. The bot answers it.
            await self.engine.set_owner(decision.key, Owner.BOT)
        self._open_allowance(decision.key, interaction, owed)
        offer = self._offer(decision, deadline)
        # The work goes on after the webhook gave up waiting: its replies then reach the user
        # through the outbox. Shielded, so WeChat dropping the connection does not cancel it.
        work = asyncio.ensure_future(self._work(decision, owed, offer))
        owed.handed_over = True
        remaining = (deadline - self.clock.now()).total_seconds()
        try:
            outcome = await asyncio.wait_for(asyncio.shield(work), timeout=max(0.0, remaining))
        except TimeoutError:
            if offer.window.close():
                log.info("wechat %s: no passive reply in time, answering success", _delivery(decision))
                self._background(self._when_done(work, decision))
                return None
            # the commit claimed the window just before the deadline: it is a COMMIT away
            outcome = await asyncio.shield(work)
        self._background(self.sender.flush_backlog(decision.key))
        if isinstance(outcome, str):
            return outcome  # a channel notice (file too large, unreadable)
        welcome = await self._welcome(decision)
        if offer.window.carried:
            carried = set(offer.window.carried)
            await self.passive.release([m for m in outcome if m.outbox_id not in carried], self.clock.now())
            text = offer.text
            return f"{welcome}\n\n{text}" if welcome is not None else text
        if await self._hand_to_wechat_kf(decision.key):
            return TRANSFER
        if offer.window.decided:
            # committed after the window closed, or behind an earlier answer still on its way:
            # "success", and the replies go out now, the welcome first
            if welcome is not None:
                self._background(self._say_then_release(decision.key, welcome, outcome))
            else:
                await self.passive.release(outcome, self.clock.now())
            return None
        # A delivery that committed nothing (WeChat retrying one already handled): the answer
        # recorded for it, or what is left to claim.
        linker = await self.sender.linker(decision.key, [m.reply for m in outcome])
        text = await self.passive.answer(
            self._record_id(decision),
            outcome,
            render=lambda replies: passive_text(replies, linker),
            clock=self.clock,
            deadline=deadline,
        )
        if text is None:
            if welcome is not None:
                # "success": the welcome goes first, then the replies, all by the 客服 API
                self._background(self._say_then_release(decision.key, welcome, outcome))
            return None
        return f"{welcome}\n\n{text}" if welcome is not None else text

    def _offer(self, decision: ForEngine | MediaToFetch, deadline: datetime) -> PassiveOffer:
        key = decision.key

        def render(locale: str) -> Callable[[list[Reply]], tuple[int, str]]:
            linker = self.sender.linker_in(locale)
            return lambda replies: passive_text(replies, linker)

        def withheld(owner: str) -> bool:
            # the response hands the session over (``_hand_to_wechat_kf``): it carries no replies
            return self._goes_to_wechat_kf(key, owner)

        window = AnswerWindow(deadline, self.clock)
        return self.passive.offer(self._record_id(decision), window, render=render, withheld=withheld)

    async def _welcome(self, decision: ForEngine | MediaToFetch) -> str | None:
        if isinstance(decision, ForEngine) and decision.welcome:
            return await self.notices.text(decision.key, "welcome")
        return None

    async def _when_done(
        self, work: asyncio.Future[list[OutboundMessage] | str], decision: ForEngine | MediaToFetch
    ) -> None:
        """After the deadline: the replies go out at once through the customer-service API,
        the welcome of a follow first."""
        try:
            outcome = await work
        except Exception:
            log.exception("wechat message handling failed")
            return
        key = decision.key
        welcome = await self._welcome(decision)
        if isinstance(outcome, str):
            await self.sender.say(key, Reply.text_reply(outcome), in_reply_to=_delivery(decision))
        elif welcome is not None:
            await self._say_then_release(key, welcome, outcome)
        else:
            await self.passive.release(outcome, self.clock.now())
        await self.sender.flush_backlog(key)

    async def _say_then_release(
        self, key: ConversationKey, text: str, held: Sequence[OutboundMessage]
    ) -> None:
        try:
            await self.sender.say(key, Reply.text_reply(text), in_reply_to="welcome")
        except DeliveryFailed as exc:
            log.warning("wechat welcome for %s not sent: %s", key, exc.reason)
        await self.passive.release(held, self.clock.now())

    def _record_id(self, decision: ForEngine | MediaToFetch) -> str:
        """What the passive answer is recorded under: MsgId is unique per user, not per
        official account, so the user is part of it."""
        record = f"{decision.key.user_id}:{_delivery(decision)}"
        return record if len(record) <= 160 else hashlib.sha256(record.encode()).hexdigest()

    async def _work(
        self, decision: ForEngine | MediaToFetch, owed: _Owed, offer: PassiveOffer
    ) -> list[OutboundMessage] | str:
        try:
            try:
                outcome = await self._handled(decision, owed, offer)
            except Exception:
                # The handling failed before its commit: the nonce is still recorded, so that
                # the signed query cannot be used again for another body.
                with contextlib.suppress(SealbotError):
                    await owed.write_alone(self.engine.store)
                raise
            # what no handling committed (a notice instead of a message) is written now
            await owed.write_alone(self.engine.store)
            return outcome
        finally:
            owed.settle()

    async def _handled(
        self, decision: ForEngine | MediaToFetch, owed: _Owed, offer: PassiveOffer
    ) -> list[OutboundMessage] | str:
        if isinstance(decision, ForEngine):
            return await self._engine_handles(decision.inbound, owed, offer)
        # A retried media message was handled already: its replies, without a second download.
        snapshot = await self.engine.store.load(decision.key, decision.delivery_id)
        if snapshot.duplicate_of is not None:
            return await self.engine.store.outbound(snapshot.duplicate_of)
        limit = self.settings.max_media_bytes
        try:
            fetched = await self.api.download_media(decision.media_id, limit)
        except MediaTooLarge:
            return await self._notice_text(decision.key, "file_too_large", limit=_megabytes(limit))
        except WeChatError as exc:
            log.warning("wechat media %s not downloaded: %s", decision.media_id, exc)
            return await self._notice_text(decision.key, "file_unreadable")
        kind = sniff(fetched.data)
        if kind not in ACCEPTED_UPLOADS:
            if decision.kind == "image":
                # WeChat said image, the bytes are not one we read: say so, not "no images"
                return await self._notice_text(decision.key, "not_an_image")
            return await self._notice_text(decision.key, "unsupported_kind", kind=decision.kind)
        name = fetched.filename if fetched.filename != decision.media_id else decision.filename
        file = await self.media.put(fetched.data, filename=name, content_type=kind)
        return await self._engine_handles(
            Inbound.upload(decision.key, decision.delivery_id, file, at=decision.at), owed, offer
        )

    async def _engine_handles(
        self, inbound: Inbound, owed: _Owed, offer: PassiveOffer
    ) -> list[OutboundMessage]:
        messages = await self.engine.handle(inbound, side_writes=owed.pending(), in_band=offer)
        owed.committed()
        return messages

    async def _hand_to_wechat_kf(self, key: ConversationKey) -> bool:
        """With WeChat's own 客服 system chosen (``transfer_to_kf``), a user who just asked for a
        human is handed to it by the passive reply; the bot stays silent meanwhile (the engine's
        notice still reaches the user through the customer-service API)."""
        if self.transfer_to_kf is None or not self.transfer_to_kf(key):
            return False  # decided without reading the owner
        if not self._goes_to_wechat_kf(key, await self.engine.store.owner_of(key)):
            return False
        await self.engine.set_owner(key, WECHAT_KF_OWNER)
        return True

    def _goes_to_wechat_kf(self, key: ConversationKey, owner: str | None) -> bool:
        """Whether a conversation with ``owner`` is handed to WeChat's 客服 system: a user who
        just asked for a human (waiting), with that system chosen for them."""
        return owner == Owner.WAITING and self.transfer_to_kf is not None and self.transfer_to_kf(key)

    def _open_allowance(self, key: ConversationKey, interaction: str, owed: _Owed) -> None:
        """The allowance opens in the transaction that commits the message: the replies that
        use it become visible to the dispatcher in that same transaction."""
        settings = self.settings
        if interaction == Interaction.MESSAGE:
            allowance, lasts = settings.cs_messages_per_message, timedelta(hours=settings.cs_window_hours)
        elif interaction == Interaction.EVENT:
            allowance, lasts = (
                settings.cs_messages_per_event,
                timedelta(seconds=settings.cs_event_window_seconds),
            )
        else:
            return
        owed.add(self.quota.opening(key.user_id, allowance=allowance, lasts=lasts, now=self.clock.now()))

    async def _notice_text(self, key: ConversationKey, name: str, **params: Any) -> str:
        return await self.notices.text(key, name, **params)

    async def _notice(self, key: ConversationKey, name: str, **params: Any) -> str | None:
        if not await self.notices.bot_may_speak(key):
            return None
        return await self._notice_text(key, name, **params)

    def render_answer(self, answer: Answer, *, encrypted: bool, nonce: str) -> str:
        if answer.transfer:
            xml = transfer_xml(
                to_user=answer.to_user, from_user=answer.from_user, create_time=int(time.time())
            )
        elif answer.text is None:
            return "success"
        else:
            xml = passive_xml(
                to_user=answer.to_user,
                from_user=answer.from_user,
                text=answer.text,
                create_time=int(time.time()),
            )
        if encrypted and self.cipher is not None:
            return self.cipher.encrypt(xml, nonce, str(int(self.clock.now().timestamp())))
        return xml


def _delivery(decision: ForEngine | MediaToFetch) -> str:
    return decision.inbound.message_id if isinstance(decision, ForEngine) else decision.delivery_id
