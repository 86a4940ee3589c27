"""Settings of the seal platform, from the environment (prefix ``PLATFORM_``) and ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Printed on sandbox invoices until the operator sets the seller's real tax number.
PLACEHOLDER_SELLER_TAX_NUMBER = "91440101MA5CXXXX0X"


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLATFORM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./var/platform.db"
    data_dir: Path = Path("./var/platform")
    # The bot's credential for calling the platform; the embedded default is fine on a laptop
    # and rejected in production mode (see ``check_production``).
    service_key: SecretStr = SecretStr("embedded-dev-service-key")
    # Key for encrypting sensitive columns (ID numbers) and CA private keys at rest.
    secret_key: SecretStr = SecretStr("embedded-dev-secret-key-change-me")
    public_base_url: str = "http://127.0.0.1:8000"
    sms_provider: str = Field(default="console", pattern="^(console)$")
    sms_code_ttl_seconds: int = 300
    sms_max_attempts: int = 5
    sms_resend_cooldown_seconds: int = 60
    account_token_ttl_seconds: int = 30 * 24 * 3600
    dev_pages: bool = True
    production: bool = False
    # Connection pool of the platform's database (docs/architecture.md, "Pools"). A request
    # holds at most one connection, for milliseconds; the timeout is short so that a saturated
    # platform answers 503 "busy" at once instead of a 500 after SQLAlchemy's default 30 s.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # Threads hashing passwords (argon2id, 64 MiB each); more queue in the hasher's pool.
    password_hash_workers: int = Field(default=2, ge=1)

    def check_production(self) -> None:
        if self.production and (
            self.service_key.get_secret_value().startswith("embedded-dev")
            or self.secret_key.get_secret_value().startswith("embedded-dev")
        ):
            raise ValueError("PLATFORM_SERVICE_KEY and PLATFORM_SECRET_KEY must be set in production")
        if self.production and self.invoice_seller_tax_number == PLACEHOLDER_SELLER_TAX_NUMBER:
            raise ValueError("PLATFORM_INVOICE_SELLER_TAX_NUMBER must be set in production")

    # --- Business core: orders, prices, documents, payments, staff (appended; see pricing.py) ---
    # An unpaid order expires this long after it was submitted for payment.
    order_payment_timeout_minutes: int = 30
    # The manual: renewal only when the seal expires in less than 60 days.
    renewal_window_days: int = 60
    validity_years_options: list[int] = Field(default_factory=lambda: [1, 2, 3, 5])
    # Prices in fen (CNY cents). New seals and renewals cost per validity year, keyed by seal kind.
    price_per_year_fen: dict[str, int] = Field(
        default_factory=lambda: {"enterprise": 30000, "personal": 20000}
    )
    price_flat_fen: dict[str, int] = Field(
        default_factory=lambda: {"change": 10000, "reissue": 15000, "unlock": 5000, "cancellation": 0}
    )
    upload_max_bytes: int = 10 * 1024 * 1024
    # Larger images are refused as decompression bombs (Pillow's own limit is about 89 MP).
    upload_max_pixels: int = 40_000_000
    storage_backend: str = Field(default="local", pattern="^(local|s3)$")
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    payment_provider: str = Field(default="sandbox", pattern="^(sandbox|wechatpay)$")
    # Notifications whose timestamp is further than this from now are refused (replay window).
    payment_notification_window_seconds: int = 300
    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""
    wechatpay_cert_serial_no: str = ""
    wechatpay_private_key: SecretStr = SecretStr("")
    wechatpay_apiv3_key: SecretStr = SecretStr("")
    # WeChat Pay platform public key (PEM) and its id, used to verify notifications.
    wechatpay_public_key: str = ""
    wechatpay_public_key_id: str = ""
    sf_tracking_url_template: str = "https://www.sf-express.com/chn/sc/waybill/list?billno={waybill}"
    invoice_auto_issue: bool = False
    unlock_reset_pin: str = "12345678"
    staff_token_ttl_seconds: int = 12 * 3600
    invoice_seller_name: str = "sealbot 电子印章平台"
    invoice_seller_tax_number: str = PLACEHOLDER_SELLER_TAX_NUMBER
