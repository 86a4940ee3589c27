"""Mailing addresses and invoice buyers' data are ciphertext in the database (with the id of
their key) and clear to the code that reads them; the migration encrypts rows stored before."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from dbkit.engine import make_engine
from platform_client.client import PlatformClient
from platform_client.invoices import InvoicesAPI
from seal_platform import migrate as platform_migrate
from seal_platform.app import build_platform_services
from seal_platform.invoices import InvoiceRecord
from seal_platform.orders import Order
from seal_platform.security import FieldCipher
from seal_platform.services import PlatformServices
from seal_platform.settings import PlatformSettings
from tests.platform.conftest import MakeAccount
from tests.platform.test_orders_support import ADDRESS, COMPANY, paid_enterprise_order
from tests.test_migrations_upgrade import _fill

INVOICE_EMAIL = "caiwu.zhang@example.cn"


async def raw_values(services: PlatformServices, query: str) -> list[str]:
    async with services.db.engine.connect() as conn:
        return [str(v) for v in (await conn.execute(sa.text(query))).scalars() if v is not None]


async def test_mailing_address_and_invoice_buyer_are_ciphertext_at_rest_and_clear_through_the_api(
    api: httpx.AsyncClient,
    client: PlatformClient,
    make_account: MakeAccount,
    platform_services: PlatformServices,
) -> None:
    account = await make_account(realname=True)
    order = await paid_enterprise_order(api, account)
    await InvoicesAPI(client).request(
        account.token, order["id"], title=COMPANY["name"], tax_number=COMPANY["uscc"], email=INVOICE_EMAIL
    )
    key_id = platform_services.field_cipher.current_version
    stored = await raw_values(platform_services, "SELECT mailing_address FROM orders")
    stored += await raw_values(platform_services, "SELECT title FROM invoices")
    stored += await raw_values(platform_services, "SELECT tax_number FROM invoices")
    stored += await raw_values(platform_services, "SELECT email FROM invoices")
    assert len(stored) == 4
    assert all(value.startswith(f"{key_id}:") for value in stored), stored
    dump = "\n".join(stored)
    for clear in (ADDRESS["phone"], ADDRESS["recipient"], COMPANY["name"], COMPANY["uscc"], INVOICE_EMAIL):
        assert clear not in dump

    read = await api.get(f"/v1/orders/{order['id']}", headers=account.headers)
    assert read.json()["mailing_address"] == ADDRESS
    (invoice,) = (await api.get("/v1/invoices", headers=account.headers)).json()
    assert (invoice["title"], invoice["tax_number"], invoice["email"]) == (
        COMPANY["name"],
        COMPANY["uscc"],
        INVOICE_EMAIL,
    )


def _to_the_revision_before_encryption(connection: Connection, url: str) -> None:
    config = platform_migrate.alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "b7e3d1a4c9f2")
    _fill(connection)
    # Direct table writes, allowed here: this is the test of the encryption migration of these
    # columns itself, and rows stored in clear exist only before it; no product path writes them.
    connection.execute(sa.text("UPDATE orders SET mailing_address = :a"), {"a": json.dumps(ADDRESS)})
    connection.execute(
        sa.text("UPDATE invoices SET title = :t, tax_number = :n, email = :e"),
        {"t": COMPANY["name"], "n": COMPANY["uscc"], "e": INVOICE_EMAIL},
    )


async def test_the_migration_encrypts_rows_stored_in_clear_and_they_read_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/clear.db"
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_the_revision_before_encryption, url)
    finally:
        await engine.dispose()
    settings = PlatformSettings(
        _env_file=None, database_url=url, data_dir=tmp_path / "data", secret_key="migration-secret"
    )
    cipher = FieldCipher.from_secrets("migration-secret")
    await platform_migrate.upgrade(url, cipher)

    services = build_platform_services(settings)
    try:
        stored = await raw_values(services, "SELECT mailing_address FROM orders")
        stored += await raw_values(
            services, "SELECT title || '|' || tax_number || '|' || email FROM invoices"
        )
        assert ADDRESS["recipient"] not in "".join(stored)
        assert INVOICE_EMAIL not in "".join(stored)
        assert stored[0].startswith(f"{cipher.current_version}:")
        async with services.db.session() as session:
            order = await session.get(Order, "1")
            invoice = await session.get(InvoiceRecord, "1")
        assert order is not None
        assert order.mailing_address == ADDRESS
        assert invoice is not None
        assert (invoice.title, invoice.tax_number, invoice.email) == (
            COMPANY["name"],
            COMPANY["uscc"],
            INVOICE_EMAIL,
        )
    finally:
        await services.db.dispose()
