"""The user's copy of their data and the deletion of their account, through the platform API,
each confirmed by an SMS code to the account's phone."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from seal_platform.clock import FrozenClock
from seal_platform.services import PlatformServices
from seal_platform.sms import ConsoleSmsProvider
from tests.platform import conftest as platform_fixtures
from tests.platform.conftest import ADULT_ID_NUMBER, MakeAccount
from tests.platform.test_orders_support import (
    ADDRESS,
    COMPANY,
    another_company,
    new_enterprise_order,
    png_bytes,
    upload,
)


async def code_for(
    api: httpx.AsyncClient, sms: ConsoleSmsProvider, account: platform_fixtures.TestAccount, purpose: str
) -> str:
    sent = await api.post(
        "/v1/sms-codes", json={"phone": account.phone, "purpose": purpose}, headers=account.headers
    )
    assert sent.status_code == 201, sent.text
    return sms.last_code(account.phone, purpose)


def blob_files(services: PlatformServices) -> list[Path]:
    return [p for p in (Path(services.settings.data_dir) / "blobs").rglob("*") if p.is_file()]


async def test_the_export_is_a_zip_of_everything_held_with_the_users_own_files(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_sms: ConsoleSmsProvider,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    scan = png_bytes((61, 47))
    await upload(api, account, "id_card_front", scan)
    order = await new_enterprise_order(api, account)

    refused = await api.post("/v1/me/export", json={"sms_code": "000000"}, headers=account.headers)
    assert refused.json()["code"] == "sms_code_missing"
    code = await code_for(api, console_sms, account, "export_data")
    response = await api.post("/v1/me/export", json={"sms_code": code}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    data = json.loads(archive.read("data.json"))
    assert data["account"]["phone"] == account.phone
    assert data["account"]["id_number"] == ADULT_ID_NUMBER
    assert data["companies"][0]["uscc"] == COMPANY["uscc"]
    assert data["orders"][0]["id"] == order["id"]
    assert data["orders"][0]["mailing_address"] == ADDRESS
    assert {d["kind"] for d in data["documents"]} == {"id_card_front", "business_licence", "impression_form"}
    front = next(d for d in data["documents"] if d["kind"] == "id_card_front")
    assert archive.read(front["file"]) == scan
    assert [c["purpose"] for c in data["sms_codes"]].count("export_data") == 1
    # the code is spent, and the copy is in the audit log
    again = await api.post("/v1/me/export", json={"sms_code": code}, headers=account.headers)
    assert again.json()["code"] == "sms_code_missing"
    async with platform_services.db.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    sa.text("SELECT action FROM audit_entries WHERE object_id = :a"),
                    {"a": account.account_id},
                )
            )
            .scalars()
            .all()
        )
    assert "personal_data.exported" in actions


async def test_deletion_is_refused_while_an_order_is_open_and_nothing_changes(
    api: httpx.AsyncClient, make_account: MakeAccount, console_sms: ConsoleSmsProvider
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    submitted = await api.post(f"/v1/orders/{order['id']}/submit", headers=account.headers)
    assert submitted.json()["status"] == "awaiting_payment"
    preview = (await api.get("/v1/me/deletion", headers=account.headers)).json()
    assert preview["blockers"] == [
        {"kind": "order", "id": order["id"], "type": "enterprise_seal", "status": "awaiting_payment"}
    ]
    code = await code_for(api, console_sms, account, "delete_account")
    refused = await api.post("/v1/me/deletion", json={"sms_code": code}, headers=account.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "account_deletion_blocked"
    assert (await api.get("/v1/me", headers=account.headers)).json()["phone"] == account.phone
    read = await api.get(f"/v1/orders/{order['id']}", headers=account.headers)
    assert read.json()["mailing_address"] == ADDRESS


async def test_deletion_erases_personal_data_keeps_orders_pseudonymised_and_ends_every_login(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    console_sms: ConsoleSmsProvider,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    order = await new_enterprise_order(api, account)
    cancelled = await api.post(f"/v1/orders/{order['id']}/cancel", headers=account.headers)
    assert cancelled.json()["status"] == "cancelled"
    other = await api.post("/v1/sessions", json={"phone": account.phone, "password": account.password})
    other_headers = {"X-Account-Token": other.json()["token"]}
    assert len(blob_files(platform_services)) == 1  # the same image twice: one blob

    code = await code_for(api, console_sms, account, "delete_account")
    wrong = await api.post("/v1/me/deletion", json={"sms_code": "999999"}, headers=account.headers)
    assert wrong.json()["code"] == "sms_code_wrong"
    deleted = await api.post("/v1/me/deletion", json={"sms_code": code}, headers=account.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["documents"] == 2

    for headers in (account.headers, other_headers):
        assert (await api.get("/v1/me", headers=headers)).status_code == 401
    login = await api.post("/v1/sessions", json={"phone": account.phone, "password": account.password})
    assert login.json()["code"] == "wrong_credentials", login.text
    assert blob_files(platform_services) == []
    async with platform_services.db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT phone, real_name, id_number_enc FROM accounts WHERE id = :a"),
                {"a": account.account_id},
            )
        ).one()
        assert row.phone != account.phone
        assert row.real_name is None
        assert row.id_number_enc is None
        kept = (await conn.execute(sa.text("SELECT id, mailing_address FROM orders"))).all()
        assert [(r.id, r.mailing_address) for r in kept] == [(order["id"], None)]
        assert (await conn.execute(sa.text("SELECT count(*) FROM documents"))).scalar_one() == 0
        codes = await conn.execute(
            sa.text("SELECT count(*) FROM sms_codes WHERE phone = :p"), {"p": account.phone}
        )
        assert codes.scalar_one() == 0
        legal_rep = (await conn.execute(sa.text("SELECT legal_rep_name FROM companies"))).scalar_one()
        assert legal_rep == "已注销用户"
    # the number is free again
    sent = await api.post("/v1/sms-codes", json={"phone": account.phone, "purpose": "register"})
    assert sent.status_code == 201, sent.text


async def test_retention_deletes_scans_of_ended_orders_and_old_sms_and_login_records_on_schedule(
    api: httpx.AsyncClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
    clock: FrozenClock,
) -> None:
    account = await make_account(realname=True)
    ended = await new_enterprise_order(api, account)
    await api.post(f"/v1/orders/{ended['id']}/cancel", headers=account.headers)
    clock.advance(timedelta(days=100))
    other = await make_account(realname=True)
    kept = await new_enterprise_order(api, other, company=another_company(7))
    assert len(blob_files(platform_services)) == 1  # both orders' scans are the same image

    # day 179: no scan is due yet; both SMS codes are past 30 days, and the first account's
    # login expired (30 days) more than 90 days ago
    clock.advance(timedelta(days=79))
    first = (await api.post("/v1/service/retention")).json()
    assert first == {"scans": 0, "sms_codes": 2, "logins": 1}
    clock.advance(timedelta(days=2))
    second = (await api.post("/v1/service/retention")).json()
    assert second == {"scans": 2, "sms_codes": 0, "logins": 0}
    assert len(blob_files(platform_services)) == 1  # the open order still names the same bytes
    async with platform_services.db.engine.connect() as conn:
        documents = dict((await conn.execute(sa.text("SELECT id, documents FROM orders"))).all())
        assert json.loads(documents[ended["id"]]) == {}
        assert len(json.loads(documents[kept["id"]])) == 2
        logged = (
            (await conn.execute(sa.text("SELECT after FROM audit_entries WHERE action = 'retention'")))
            .scalars()
            .all()
        )
    assert len(logged) == 2  # each run that deleted something, with its counts
    clock.advance(timedelta(days=200))
    third = (await api.post("/v1/service/retention")).json()
    assert third == {"scans": 0, "sms_codes": 0, "logins": 1}
