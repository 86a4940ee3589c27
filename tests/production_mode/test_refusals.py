"""Production mode refuses every demo part with one line naming the setting; the embedded
default keeps them (sandbox pay page, console SMS, dev SMS page, the sample invoice)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from pydantic import SecretStr

from bot.app import embedded_platform_services
from bot.cli import main
from bot.errors import ConfigError
from bot.settings import Settings
from seal_platform import migrate as platform_migrate
from seal_platform.app import build_platform_services, create_platform_app
from seal_platform.production_checks import SMS_TEMPLATE_PURPOSES
from seal_platform.settings import PlatformSettings
from seal_platform.sms import SmsPurpose

# The platform loads the WeChat Pay keys when it starts (a malformed key refuses start-up), so
# they are well-formed keys, if of nobody.
_MERCHANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_WECHATPAY_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# Every setting production needs, pointing at nothing real: each test removes one of them.
READY: dict[str, str] = {
    "PLATFORM_SECRET_KEY": "platform-secret-of-the-operator",
    "PLATFORM_INVOICE_SELLER_TAX_NUMBER": "91440101MA5AAAAA1B",
    "PLATFORM_PAYMENT_PROVIDER": "wechatpay",
    "PLATFORM_WECHATPAY_MCHID": "1900000001",
    "PLATFORM_WECHATPAY_APPID": "wx8888888888888888",
    "PLATFORM_WECHATPAY_CERT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "PLATFORM_WECHATPAY_PRIVATE_KEY": _MERCHANT_KEY.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    ).decode(),
    "PLATFORM_WECHATPAY_APIV3_KEY": "0123456789abcdef0123456789abcdef",
    "PLATFORM_WECHATPAY_PUBLIC_KEY": _WECHATPAY_KEY.public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode(),
    "PLATFORM_WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0000000000000024101100397200000006",
    "PLATFORM_SMS_PROVIDER": "tencent",
    "PLATFORM_SMS_ACCESS_KEY_ID": "AKIDexample",
    "PLATFORM_SMS_ACCESS_KEY_SECRET": "secret-of-the-sms-account",
    "PLATFORM_SMS_SIGN_NAME": "电子印章服务",
    "PLATFORM_SMS_TEMPLATE_REGISTER": "1000001",
    "PLATFORM_SMS_TEMPLATE_LOGIN": "1000002",
    "PLATFORM_SMS_TEMPLATE_CANCEL_SEAL": "1000003",
    "PLATFORM_SMS_TEMPLATE_RESET_PASSWORD": "1000004",
    "PLATFORM_SMS_TEMPLATE_EXPORT_DATA": "1000005",
    "PLATFORM_SMS_TEMPLATE_DELETE_ACCOUNT": "1000006",
    "PLATFORM_SMS_TENCENT_APP_ID": "1400000001",
    "PLATFORM_DEV_PAGES": "false",
    "PLATFORM_OPERATOR_COMPANY": "示例印章服务有限公司",
    "PLATFORM_PRODUCTION_STATION": "remote",
}


def _bot_settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        data_dir=tmp_path,
        production=True,
        public_base_url="https://seal.example.cn",
        secret_key=SecretStr("a-real-secret-of-some-length"),
        platform_service_key=SecretStr("a-real-service-key"),
    )


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in READY.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


async def test_with_every_real_setting_the_embedded_platform_starts(
    production_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = await embedded_platform_services(_bot_settings(tmp_path))
    try:
        assert services.settings.production
        assert services.settings.effective_invoice_provider == "manual"
    finally:
        await services.db.dispose()


@pytest.mark.parametrize(
    ("name", "demo_value"),
    [
        ("PLATFORM_PAYMENT_PROVIDER", "sandbox"),
        ("PLATFORM_SMS_PROVIDER", "console"),
        ("PLATFORM_DEV_PAGES", "true"),
        ("PLATFORM_INVOICE_PROVIDER", "sandbox"),
        ("PLATFORM_SECRET_KEY", ""),
        ("PLATFORM_SMS_TEMPLATE_LOGIN", ""),
        ("PLATFORM_SMS_TEMPLATE_RESET_PASSWORD", ""),
        ("PLATFORM_SMS_TEMPLATE_EXPORT_DATA", ""),
        ("PLATFORM_SMS_TEMPLATE_DELETE_ACCOUNT", ""),
        ("PLATFORM_WECHATPAY_APIV3_KEY", ""),
        ("PLATFORM_OPERATOR_COMPANY", ""),
        ("PLATFORM_PRODUCTION_STATION", "demo"),
    ],
)
async def test_a_demo_part_left_on_refuses_start_up_naming_its_setting(
    production_env: pytest.MonkeyPatch, tmp_path: Path, name: str, demo_value: str
) -> None:
    production_env.setenv(name, demo_value)
    with pytest.raises(ConfigError) as refused:
        await embedded_platform_services(_bot_settings(tmp_path))
    line = str(refused.value)
    assert line.startswith(name + ":")
    assert "\n" not in line


def test_every_sms_purpose_has_a_template_setting_that_production_checks() -> None:
    purposes = {purpose.value for purpose in SmsPurpose}
    assert set(SMS_TEMPLATE_PURPOSES) == purposes
    for purpose in purposes:
        assert f"PLATFORM_SMS_TEMPLATE_{purpose.upper()}" in READY


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEALBOT_PUBLIC_BASE_URL", "http://seal.example.cn"),
        ("SEALBOT_PLATFORM_SERVICE_KEY", "embedded-dev-service-key"),
    ],
)
def test_the_cli_refuses_an_http_url_and_the_default_service_key_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv("SEALBOT_PRODUCTION", "true")
    monkeypatch.setenv("SEALBOT_SECRET_KEY", "a-real-secret-of-some-length")
    monkeypatch.setenv("SEALBOT_PUBLIC_BASE_URL", "https://seal.example.cn")
    monkeypatch.setenv("SEALBOT_PLATFORM_SERVICE_KEY", "a-real-service-key")
    monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert name in err


def _platform(tmp_path: Path, **settings: object) -> PlatformSettings:
    return PlatformSettings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
        data_dir=tmp_path / "data",
        **settings,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("settings", "mounted"),
    [
        ({}, True),
        ({"payment_provider": "wechatpay"}, False),
        ({"production": True}, False),
    ],
)
async def test_the_sandbox_pay_page_is_mounted_only_for_the_sandbox_outside_production(
    tmp_path: Path, settings: dict[str, object], mounted: bool
) -> None:
    platform_settings = _platform(tmp_path, **settings)
    await platform_migrate.upgrade(platform_settings.database_url)
    services = build_platform_services(platform_settings)
    app = create_platform_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p.test") as http:
        page = await http.post("/pay/" + "a" * 32)
        docs = await http.get("/docs")
    # Mounted, the page looks the payment up (and finds none); unmounted, the path is unknown.
    assert ("payment not found" in page.text) is mounted
    assert (docs.status_code == 200) is not settings.get("production", False)
    await services.db.dispose()


def test_staff_add_answers_a_weak_password_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEALBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEALBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    assert main(["staff-add", "wang", "--password", "short"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == "sealbot staff-add: refused: 员工密码至少10位"


def test_check_production_prints_every_demo_part_it_would_refuse(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLATFORM_DEV_PAGES", "true")
    assert main(["check-production"]) == 1
    out = capsys.readouterr().out
    for name in (
        "SEALBOT_SECRET_KEY",
        "PLATFORM_SECRET_KEY",
        "PLATFORM_PAYMENT_PROVIDER",
        "PLATFORM_SMS_PROVIDER",
        "PLATFORM_DEV_PAGES",
    ):
        assert f"FAIL {name}:" in out


def test_check_production_passes_with_real_settings(
    production_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    production_env.setenv("SEALBOT_SECRET_KEY", "a-real-secret-of-some-length")
    production_env.setenv("SEALBOT_PUBLIC_BASE_URL", "https://seal.example.cn")
    production_env.setenv("SEALBOT_PLATFORM_SERVICE_KEY", "a-real-service-key")
    assert main(["check-production"]) == 0
    assert capsys.readouterr().out.startswith("OK")
