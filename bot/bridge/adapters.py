"""The hub's ports served by the seal platform, and hub updates turned into conversation events.

The platform acts only on behalf of an account, with that account's token. The hub knows the
account and the order of a job but holds no token, so the adapters find it where it lives: in
the state of the conversation that submitted the job (and, failing that, in any logged-in
conversation of the same account).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from bot.bridge.models import BridgeJob
from bot.bridge.ports import IssuanceRefused, IssuedCredential, JobUpdate
from bot.db import Database
from bot.engine.messages import ConversationKey, ExternalEvent
from bot.engine.state import StateCodec
from bot.engine.store import ConversationStore
from bot.errors import SealbotError
from platform_client.client import PlatformClient
from platform_client.errors import PlatformClientError, PlatformUnavailable

log = logging.getLogger(__name__)

EVENT_PREFIX = "ukey."


class NoAccountToken(SealbotError):
    """No conversation of the account is logged in: the platform cannot be asked on its behalf."""


class SoPinUnavailable(SealbotError):
    """The platform did not release the SO PIN for this unlock job."""


class AccountTokens(Protocol):
    async def token_for(self, account_id: str, order_id: str) -> str: ...


@dataclass
class ConversationTokens:
    """Account tokens read from conversation state: the job's own conversation first."""

    db: Database
    store: ConversationStore
    codec: StateCodec

    async def token_for(self, account_id: str, order_id: str) -> str:
        for key in await self._candidates(account_id, order_id):
            row = await self.store.get(key)
            if row is None or row.state is None:
                continue
            session = self.codec.load(row.state).session
            if session is not None and session.account_id == account_id:
                return session.token
        raise NoAccountToken(f"no logged-in conversation for account {account_id}")

    async def _candidates(self, account_id: str, order_id: str) -> list[ConversationKey]:
        async with self.db.session() as session:
            jobs: Sequence[BridgeJob] = list(
                await session.scalars(
                    select(BridgeJob)
                    .where(BridgeJob.account_id == account_id)
                    .order_by(BridgeJob.created_at.desc())
                )
            )
        refs = [
            j.conversation_ref for j in jobs if j.conversation_ref and j.params.get("order_id") == order_id
        ]
        keys = [ConversationKey.parse(ref) for ref in dict.fromkeys(refs)]
        keys += [k for k in await self.store.keys_for_account(account_id) if k not in keys]
        return keys


@dataclass
class PlatformCertificateIssuer:
    """Renewal and change: the platform certifies the key's new public key and makes the SESeal."""

    platform: PlatformClient
    tokens: AccountTokens

    async def issue(self, account_id: str, order_id: str, csr_der: bytes) -> IssuedCredential:
        try:
            token = await self.tokens.token_for(account_id, order_id)
        except NoAccountToken as exc:
            raise IssuanceRefused(
                "the account is not logged in on the service; log in again in the chat"
            ) from exc
        csr_pem = x509.load_der_x509_csr(csr_der).public_bytes(Encoding.PEM).decode()
        try:
            job = await self.platform.orders.ukey_job(token, order_id)
            if job.key_serial is None:
                raise IssuanceRefused("the seal has no key on record")
            certified = await self.platform.orders.certify_key(
                token, order_id, key_serial=job.key_serial, public_key_pem=csr_pem
            )
            seseal = await self.platform.documents.content(token, certified.seseal_document_id)
        except PlatformUnavailable as exc:
            raise IssuanceRefused("the service is unavailable; try again in a few minutes") from exc
        except PlatformClientError as exc:
            raise IssuanceRefused(f"the service refused the certificate ({exc.code})") from exc
        certificate = x509.load_pem_x509_certificate(certified.certificate_pem.encode())
        return IssuedCredential(
            cert_der=certificate.public_bytes(Encoding.DER),
            seseal_der=seseal,
            # The platform answers with the leaf only; the bridge keeps it as the chain it saw.
            chain_pem=certified.certificate_pem,
        )


@dataclass
class PlatformSoPinProvider:
    """Unlock: the platform releases the key's SO PIN for this paid order, to the bridge only."""

    platform: PlatformClient
    tokens: AccountTokens

    async def so_pin_for(self, account_id: str, key_serial: str, order_id: str) -> str:
        try:
            token = await self.tokens.token_for(account_id, order_id)
            job = await self.platform.orders.ukey_job(token, order_id)
            if job.key_serial is not None and job.key_serial != key_serial:
                raise SoPinUnavailable("the job's key is not the seal's key")
            return await self.platform.orders.so_pin(token, order_id)
        except NoAccountToken as exc:
            raise SoPinUnavailable(str(exc)) from exc
        except PlatformClientError as exc:
            raise SoPinUnavailable(f"the platform refused the SO PIN ({exc.code})") from exc


def _event_id(update: JobUpdate, attempt: int | None) -> str:
    """One id per distinct update: redelivering the same update is a no-op in the engine."""
    if update.job_id is not None:
        detail = update.stage or update.outcome or ""
        return f"ukey:{update.job_id}:{attempt or 0}:{update.kind.value}:{detail}"
    fingerprint = hashlib.sha256(f"{update.device_id}|{update.at.isoformat()}".encode()).hexdigest()[:16]
    return f"ukey:device:{update.device_id}:{update.kind.value}:{fingerprint}"


def job_update_to_event(
    update: JobUpdate, *, attempt: int | None = None, order_id: str | None = None
) -> ExternalEvent:
    """``ukey.<kind>`` with the update's fields; ``attempt`` tells reruns of one job apart and
    ``order_id`` names the platform order the job carries out (none for a PIN change)."""
    data: dict[str, Any] = {
        "account_id": update.account_id,
        "job_id": update.job_id,
        "job_type": update.job_type,
        "device_id": update.device_id,
        "device_name": update.device_name,
        "stage": update.stage,
        "outcome": update.outcome,
        "reason": update.reason,
        "message": update.message,
        "tries_left": update.tries_left,
        "final_try": update.final_try,
        "attempt": attempt,
        "order_id": order_id,
        "at": update.at.isoformat(),
        "data": dict(update.data),
    }
    return ExternalEvent(_event_id(update, attempt), EVENT_PREFIX + update.kind.value, data)
