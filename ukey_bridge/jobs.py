"""The UKey jobs: read key info, renewal, change, unlock and PIN change.

Renewal and change follow one order so that an interruption anywhere leaves a working key:
the new key pair and its certificate and seal are written next to the old ones, checked, and
only then are the old objects removed (certificate last, so a rerun can still find which
objects were the old ones). Every step looks at what is already on the key before acting, so
running the same job again finishes whatever an earlier run started.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ukey_bridge import ck
from ukey_bridge.backend import KeyProfile, PinState, TokenBackend, TokenInfo, TokenSession
from ukey_bridge.csr import build_csr, sign_sha256
from ukey_bridge.errors import (
    BridgeError,
    CertificateMismatch,
    NoTokenPresent,
    PinEntryCancelled,
    PinIncorrect,
    PinLocked,
    TokenNotBlank,
    TokenOperationFailed,
    WrongToken,
)
from ukey_bridge.i18n import CHINESE, Texts
from ukey_bridge.journal import JobJournal
from ukey_bridge.keys import (
    KeyPair,
    PublicKey,
    StoredCertificate,
    certificate_template,
    find_key_pair,
    find_seal_objects,
    job_label,
    key_id_for_job,
    key_pair_templates,
    list_certificates,
    read_object_value,
    read_public_key,
    same_public_key,
    seseal_template,
)
from ukey_bridge.outcomes import JobReport, report_for_error
from ukey_bridge.pin_prompt import RESET_PIN, JobExplanation, PinKind, PinPrompt, PinRequest
from ukey_bridge.protocol import JobType, Outcome, Stage

StepHook = Callable[[str], Awaitable[None]]
BackendFactory = Callable[[], TokenBackend]


@dataclass(frozen=True)
class IssuedCertificate:
    cert_der: bytes
    seseal_der: bytes
    chain_pem: str


@dataclass(frozen=True)
class Job:
    """A job whose signature and addressing were already checked."""

    job_id: str
    job_type: JobType
    params: dict[str, Any]


class ServerLink(Protocol):
    """What a running job needs from the service. Both raise ``ConnectionLost`` when offline."""

    async def progress(self, job_id: str, stage: Stage, detail: dict[str, Any] | None = None) -> None: ...

    async def request_certificate(self, job_id: str, csr_der: bytes) -> IssuedCertificate:
        """Raises ``IssuanceFailed`` when the service refuses the request."""
        ...


async def _no_hook(_step: str) -> None:
    return None


def wrong_pin_reported(state: PinState) -> bool:
    """Whether the key itself says a wrong PIN was typed before (PKCS#11 count-low/final-try)."""
    return state.final_try or state.count_low


def pin_warning(state: PinState, t: Texts = CHINESE) -> str | None:
    if state.final_try:
        return t("pin_final_try")
    if state.tries_left is not None and state.count_low:
        return t("pin_wrong_before_count", tries=state.tries_left)
    if state.count_low:
        return t("pin_wrong_before")
    return None


def _certificate_summary(cert: StoredCertificate) -> dict[str, Any]:
    loaded = cert.load()
    return {
        "sha256": cert.sha256,
        "key_id": cert.key_id.hex(),
        "subject": loaded.subject.rfc4514_string(),
        "serial_number": format(loaded.serial_number, "x"),
        "not_after": loaded.not_valid_after_utc.isoformat(),
    }


def _token_summary(token: TokenInfo) -> dict[str, Any]:
    return {
        "serial": token.serial,
        "label": token.label,
        "manufacturer": token.manufacturer,
        "model": token.model,
        "pin_count_low": token.pin.count_low,
        "pin_final_try": token.pin.final_try,
        "pin_locked": token.pin.locked,
        "pin_to_be_changed": token.pin.to_be_changed,
        "pin_tries_left": token.pin.tries_left,
    }


async def _proves_possession(
    session: TokenSession, pair: KeyPair, cert: x509.Certificate, profile: KeyProfile
) -> bool:
    """Sign a fresh challenge with the private key and check it with the certificate's key."""
    challenge = secrets.token_bytes(32)
    public = cert.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            signature = await sign_sha256(session, pair.private, public, challenge, profile)
            public.verify(signature, challenge, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            signature = await sign_sha256(session, pair.private, public, challenge, profile)
            public.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


class JobRunner:
    """Runs one job at a time against a freshly opened PKCS#11 module.

    ``step_hook`` is called with a step name after every step that changes or commits to
    something; tests make it raise to kill the bridge between any two steps.
    """

    def __init__(
        self,
        backend_factory: BackendFactory,
        prompt: PinPrompt,
        *,
        journal: JobJournal | None = None,
        step_hook: StepHook | None = None,
        texts: Texts = CHINESE,
    ) -> None:
        self._t = texts
        self._backend_factory = backend_factory
        self._prompt = prompt
        self._journal = journal
        self._step = step_hook or _no_hook

    async def run(self, job: Job, link: ServerLink) -> JobReport:
        if self._journal is not None:
            recorded = self._journal.get(job.job_id)
            if recorded is not None:
                return recorded
        backend = self._backend_factory()
        try:
            report = await self._dispatch(backend, job, link)
        except BridgeError as exc:
            report = report_for_error(exc, self._t)
        finally:
            await backend.close()
        if report.succeeded and self._journal is not None:
            self._journal.record(job.job_id, report)
        await self._prompt.notify(report.message)
        return report

    async def _dispatch(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        await link.progress(job.job_id, Stage.RECEIVED)
        if job.job_type is JobType.READ_KEY_INFO:
            return await self._read_key_info(backend, job, link)
        if job.job_type in (JobType.RENEWAL, JobType.CHANGE):
            return await self._replace_certificate(backend, job, link)
        if job.job_type is JobType.UNLOCK:
            return await self._unlock(backend, job, link)
        if job.job_type is JobType.PRODUCE:
            return await self._produce(backend, job, link)
        return await self._change_pin(backend, job, link)

    # -- shared steps -----------------------------------------------------------------------

    def _user_pin_request(self, token: TokenInfo) -> PinRequest:
        return PinRequest(
            PinKind.USER, token.serial, token.label, pin_warning(token.pin, self._t), state=token.pin
        )

    async def _find_token(self, backend: TokenBackend, expected_serial: str | None) -> TokenInfo:
        tokens = await backend.list_tokens()
        if not tokens:
            raise NoTokenPresent("no key is inserted")
        if expected_serial is None:
            return tokens[0]
        for token in tokens:
            if token.serial == expected_serial:
                return token
        raise WrongToken(expected_serial, [t.serial for t in tokens])

    async def _confirm(self, job: Job, link: ServerLink, title: str, details: tuple[str, ...]) -> None:
        await link.progress(job.job_id, Stage.AWAITING_CONFIRMATION)
        if not await self._prompt.confirm(JobExplanation(job.job_id, job.job_type.value, title, details)):
            raise PinEntryCancelled("it was declined at the PC")

    async def _ask_pin(self, job: Job, link: ServerLink, request: PinRequest) -> str | None:
        detail: dict[str, Any] = {"pin": request.kind.value, "warning": request.warning}
        if request.state is not None:
            # what the key reports, so the chat warns only when a wrong PIN was really typed
            detail.update(
                wrong_pin_before=wrong_pin_reported(request.state),
                final_try=request.state.final_try,
                tries_left=request.state.tries_left,
            )
        await link.progress(job.job_id, Stage.AWAITING_PIN, detail)
        return await self._prompt.ask_pin(request)

    async def _required_pin(self, job: Job, link: ServerLink, request: PinRequest) -> str:
        pin = await self._ask_pin(job, link, request)
        if not pin:
            raise PinEntryCancelled("no PIN was typed")
        return pin

    # -- read key info ----------------------------------------------------------------------

    async def _read_key_info(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        serial = job.params.get("key_serial")
        token = await self._find_token(backend, str(serial) if serial else None)
        await self._confirm(
            job,
            link,
            self._t("job_read_title"),
            (self._t("job_read_key", serial=token.serial, label=token.label),),
        )
        session = await backend.open_session(token.slot_id, read_write=False)
        try:
            certificates = [_certificate_summary(c) for c in await list_certificates(session)]
        finally:
            await session.close()
        data = {"token": _token_summary(token), "certificates": certificates}
        return JobReport(
            Outcome.SUCCEEDED,
            self._t("done_read", serial=token.serial),
            token.pin.tries_left,
            token.pin.final_try,
            data,
        )

    # -- renewal and change -----------------------------------------------------------------

    async def _replace_certificate(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        serial = str(job.params["key_serial"])
        replaces = str(job.params.get("replaces_cert_sha256", "")).lower()
        subject = {str(k): str(v) for k, v in dict(job.params.get("subject", {})).items()}
        profile = backend.key_profile

        token = await self._find_token(backend, serial)
        if token.pin.locked:
            raise PinLocked("the PIN is locked")
        await self._step("find_token")
        await self._confirm(
            job,
            link,
            self._t(f"job_{job.job_type.value}_title", serial=token.serial),
            (self._t("job_replace_new"), self._t("job_replace_old")),
        )
        pin = await self._required_pin(job, link, self._user_pin_request(token))
        await self._step("pin")

        session = await backend.open_session(token.slot_id, read_write=True)
        try:
            await session.login(pin)
            await self._step("login")
            await link.progress(job.job_id, Stage.WORKING)

            key_id = key_id_for_job(job.job_id)
            pair = await self._ensure_key_pair(session, profile, key_id, job_label(job.job_id))
            await self._step("key_pair")
            public_key = await read_public_key(session, pair.public)

            certificates = await list_certificates(session)
            old_ids = {c.key_id for c in certificates if replaces and c.sha256 == replaces}
            old_ids.discard(key_id)

            current = await self._new_certificate_on_key(session, key_id, public_key)
            seals = await find_seal_objects(session, key_id)
            if current is None or not seals:
                csr = await build_csr(session, pair.private, public_key, subject, profile)
                await link.progress(job.job_id, Stage.AWAITING_CERTIFICATE)
                issued = await link.request_certificate(job.job_id, csr)
                issued_cert = x509.load_der_x509_certificate(issued.cert_der)
                if not same_public_key(public_key, issued_cert.public_key()):
                    raise CertificateMismatch("the issued certificate is for another key")
                await self._step("issue")
                await link.progress(job.job_id, Stage.WRITING)
                if current is None:
                    await session.create_object(
                        certificate_template(issued.cert_der, key_id, job_label(job.job_id))
                    )
                await self._step("write_certificate")
                if not seals:
                    await session.create_object(seseal_template(issued.seseal_der, key_id))
                await self._step("write_seal")

            written = await self._new_certificate_on_key(session, key_id, public_key)
            if written is None or not await _proves_possession(session, pair, written.load(), profile):
                raise CertificateMismatch("the certificate on the key does not match the new key")
            await self._step("verify")

            for old_id in sorted(old_ids):
                await self._remove_old(session, old_id)
            data = {
                "key_serial": token.serial,
                "new_certificate": _certificate_summary(written),
                "replaced_cert_sha256": replaces or None,
                "seseal_sha256": hashlib.sha256(
                    await read_object_value(session, (await find_seal_objects(session, key_id))[0])
                ).hexdigest(),
            }
        finally:
            await session.close()
        return JobReport(Outcome.SUCCEEDED, self._t("done_replace"), data=data)

    # -- production (the station) ----------------------------------------------------------

    async def _production_token(self, backend: TokenBackend, label: str, so_pin: str) -> TokenInfo:
        """The key this production job initialised in an earlier run, else a blank one, now
        initialised under the job's SO PIN and label."""
        tokens = await backend.list_tokens()
        for token in tokens:
            if token.label == label:
                return token  # a rerun: the SO PIN login below proves it is ours
        blank = await backend.list_blank_slots()
        if not blank:
            if tokens:
                raise TokenNotBlank([t.serial for t in tokens])
            raise NoTokenPresent("no key is inserted")
        token = await backend.init_token(blank[0], so_pin, label)
        await self._step("init_token")
        return token

    async def _produce(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        """Initialise a blank key, set the initial user PIN, generate the key pair on it, have
        the service certify it, write the certificate and the SESeal, read both back, verify."""
        label = str(job.params["label"])
        so_pin = str(job.params.get("so_pin", ""))
        if not so_pin:
            raise TokenOperationFailed("the production job carries no SO PIN")
        subject = {str(k): str(v) for k, v in dict(job.params.get("subject", {})).items()}
        profile = backend.key_profile
        # each step is reported as it starts: the console shows production as it happens
        await link.progress(job.job_id, Stage.WORKING, {"step": "init_token"})
        token = await self._production_token(backend, label, so_pin)
        await link.progress(job.job_id, Stage.WORKING, {"step": "generate_key", "key_serial": token.serial})

        session = await backend.open_session(token.slot_id, read_write=True)
        try:
            try:
                await session.login(so_pin, so=True)
            except (PinIncorrect, PinLocked) as exc:
                # a key that carries this job's label but not its SO PIN is someone else's
                raise TokenNotBlank([token.serial]) from exc
            await session.init_pin(RESET_PIN)
            await session.logout()
            await self._step("init_pin")
            await session.login(RESET_PIN)
            key_id = key_id_for_job(job.job_id)
            pair = await self._ensure_key_pair(session, profile, key_id, job_label(job.job_id))
            await self._step("key_pair")
            public_key = await read_public_key(session, pair.public)
            # a rerun certifies again: what an interrupted run wrote was never recorded
            for cert in await list_certificates(session):
                await session.destroy_object(cert.handle)
            for handle in await find_seal_objects(session, key_id):
                await session.destroy_object(handle)
            csr = await build_csr(session, pair.private, public_key, subject, profile)
            await link.progress(job.job_id, Stage.AWAITING_CERTIFICATE, {"step": "certify"})
            issued = await link.request_certificate(job.job_id, csr)
            if not same_public_key(public_key, x509.load_der_x509_certificate(issued.cert_der).public_key()):
                raise CertificateMismatch("the issued certificate is for another key")
            await self._step("issue")
            await link.progress(job.job_id, Stage.WRITING, {"step": "write"})
            await session.create_object(certificate_template(issued.cert_der, key_id, job_label(job.job_id)))
            await self._step("write_certificate")
            await session.create_object(seseal_template(issued.seseal_der, key_id))
            await self._step("write_seal")
            await link.progress(job.job_id, Stage.WORKING, {"step": "verify"})
            written = await self._new_certificate_on_key(session, key_id, public_key)
            seals = await find_seal_objects(session, key_id)
            seal_der = await read_object_value(session, seals[0]) if len(seals) == 1 else b""
            if (
                written is None
                or written.der != issued.cert_der
                or seal_der != issued.seseal_der
                or not await _proves_possession(session, pair, written.load(), profile)
            ):
                raise CertificateMismatch("what was read back from the key is not what was written")
            await session.logout()
            await self._step("verify")
        finally:
            await session.close()
        data = {
            "key_serial": token.serial,
            "new_certificate": _certificate_summary(written),
            "seseal_sha256": hashlib.sha256(seal_der).hexdigest(),
        }
        return JobReport(Outcome.SUCCEEDED, self._t("done_produce", serial=token.serial), data=data)

    async def _ensure_key_pair(
        self, session: TokenSession, profile: KeyProfile, key_id: bytes, label: str
    ) -> KeyPair:
        public, private = await find_key_pair(session, key_id)
        if len(public) == 1 and len(private) == 1:
            return KeyPair(key_id, public[0], private[0])
        # half a pair (the key was pulled during generation) cannot be used: start again
        for handle in (*public, *private):
            await session.destroy_object(handle)
        public_template, private_template = key_pair_templates(profile, key_id, label)
        pub, priv = await session.generate_key_pair(public_template, private_template, profile.keygen)
        return KeyPair(key_id, pub, priv)

    async def _new_certificate_on_key(
        self, session: TokenSession, key_id: bytes, public_key: PublicKey
    ) -> StoredCertificate | None:
        """The certificate for the new key; one for another key under its id is thrown away."""
        found = None
        for cert in await list_certificates(session):
            if cert.key_id != key_id:
                continue
            if found is None and same_public_key(public_key, cert.load().public_key()):
                found = cert
            else:
                await session.destroy_object(cert.handle)
        return found

    async def _remove_old(self, session: TokenSession, old_id: bytes) -> None:
        for handle in await find_seal_objects(session, old_id):
            await session.destroy_object(handle)
            await self._step("remove_old_seal")
        public, private = await find_key_pair(session, old_id)
        for handle in private:
            await session.destroy_object(handle)
            await self._step("remove_old_private_key")
        for handle in public:
            await session.destroy_object(handle)
            await self._step("remove_old_public_key")
        # the certificate goes last: while it is there a rerun can tell which objects are old
        for handle in await session.find_objects({ck.CKA_CLASS: ck.CKO_CERTIFICATE, ck.CKA_ID: old_id}):
            await session.destroy_object(handle)
            await self._step("remove_old_certificate")

    # -- unlock and PIN change --------------------------------------------------------------

    async def _unlock(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        serial = str(job.params["key_serial"])
        so_pin = str(job.params.get("so_pin", ""))
        if not so_pin:
            raise TokenOperationFailed("the unlock job carries no SO PIN")
        token = await self._find_token(backend, serial)
        await self._confirm(
            job,
            link,
            self._t("job_unlock_title", serial=token.serial),
            (self._t("job_unlock_detail", pin=RESET_PIN),),
        )
        session = await backend.open_session(token.slot_id, read_write=True)
        try:
            try:
                await session.login(so_pin, so=True)
            except (PinIncorrect, PinLocked) as exc:
                return JobReport(
                    Outcome.SO_PIN_REJECTED,
                    self._t("so_pin_rejected"),
                    data={"so_locked": isinstance(exc, PinLocked)},
                )
            await session.init_pin(RESET_PIN)
            await session.logout()
            await self._step("init_pin")
        finally:
            await session.close()

        new_pin = await self._ask_pin(
            job,
            link,
            PinRequest(
                PinKind.NEW_USER,
                token.serial,
                token.label,
                self._t("pin_reset_new", pin=RESET_PIN),
                optional=True,
            ),
        )
        pin_changed = False
        if new_pin:
            await self._set_pin(backend, token, RESET_PIN, new_pin)
            pin_changed = True
        message = self._t("done_unlock_new_pin") if pin_changed else self._t("done_unlock", pin=RESET_PIN)
        return JobReport(
            Outcome.SUCCEEDED, message, data={"key_serial": token.serial, "pin_changed": pin_changed}
        )

    async def _change_pin(self, backend: TokenBackend, job: Job, link: ServerLink) -> JobReport:
        serial = str(job.params["key_serial"])
        token = await self._find_token(backend, serial)
        if token.pin.locked:
            raise PinLocked("the PIN is locked")
        await self._confirm(job, link, self._t("job_pin_change_title", serial=token.serial), ())
        old = await self._required_pin(job, link, self._user_pin_request(token))
        session = await backend.open_session(token.slot_id, read_write=True)
        try:
            # the current PIN is checked before a new one is asked for
            await session.login(old)
            new = await self._required_pin(job, link, PinRequest(PinKind.NEW_USER, token.serial, token.label))
            await session.set_pin(old, new)
            await session.logout()
            await self._step("set_pin")
        finally:
            await session.close()
        return JobReport(Outcome.SUCCEEDED, self._t("done_pin_change"), data={"key_serial": token.serial})

    async def _set_pin(self, backend: TokenBackend, token: TokenInfo, old: str, new: str) -> None:
        session = await backend.open_session(token.slot_id, read_write=True)
        try:
            await session.login(old)
            await session.set_pin(old, new)
            await session.logout()
            await self._step("set_pin")
        finally:
            await session.close()
