"""Settings of the seal platform, from the environment (prefix ``PLATFORM_``) and ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Printed on sandbox invoices until the operator sets the seller's real tax number.
from seal_platform.production_checks import PLACEHOLDER_SELLER_TAX_NUMBER, production_problems

__all__ = ["PLACEHOLDER_SELLER_TAX_NUMBER", "PlatformSettings"]


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
    # Earlier secret keys (comma-separated), still read while stored blobs are re-encrypted.
    old_secret_keys: SecretStr = SecretStr("")
    public_base_url: str = "http://127.0.0.1:8000"
    # "console" is the embedded default (no SMS leaves the machine); production needs a real one.
    sms_provider: str = Field(default="console", pattern="^(console|tencent|aliyun)$")
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
    # Retention (seal_platform/retention.py, docs/privacy.md): scans of ended orders, SMS code
    # records and expired login records are deleted this many days later.
    scan_retention_days: int = Field(default=180, ge=1)
    sms_record_retention_days: int = Field(default=30, ge=1)
    login_record_retention_days: int = Field(default=90, ge=1)
    # Run as a separate service: after a commit that added events, announce it on the bot
    # workers' event bus (Redis pub/sub; the same URL and prefix as the workers'
    # SEALBOT_REDIS_URL and SEALBOT_BUS_PREFIX), so they read the feed at once, not a poll later.
    redis_url: str | None = None
    bus_prefix: str = "sealbot:bus:"

    def check_production(self) -> None:
        """Raise ``ValueError`` with one line naming the first demo part left on in production."""
        problems = self.production_problems()
        if problems:
            raise ValueError(problems[0])

    def production_problems(self) -> list[str]:
        """Every demo part still on, one line each naming its setting (empty outside production)."""
        if not self.production:
            return []
        return production_problems(self)

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
    # Where documents and the CA's keys live (``seal_platform.storage``): "auto" is the
    # platform's database on PostgreSQL (shared by every host) and files on SQLite.
    storage_backend: str = Field(default="auto", pattern="^(auto|local|database|s3)$")
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
    # The WeChat Pay API host; empty: api.mch.weixin.qq.com (set only for a test double).
    wechatpay_gateway: str = ""
    sf_tracking_url_template: str = "https://www.sf-express.com/chn/sc/waybill/list?billno={waybill}"
    invoice_auto_issue: bool = False
    unlock_reset_pin: str = "12345678"
    staff_token_ttl_seconds: int = 12 * 3600
    # Empty: the operator's company, else its service name (``operator.seller_name``).
    invoice_seller_name: str = ""
    invoice_seller_tax_number: str = PLACEHOLDER_SELLER_TAX_NUMBER

    # --- Production providers (SMS, e-mail, invoicing, operator identity); see docs/operations.md ---
    # The SMS gateway account: Tencent SecretId / SecretKey, or Alibaba AccessKey id / secret.
    sms_access_key_id: str = ""
    sms_access_key_secret: SecretStr = SecretStr("")
    sms_sign_name: str = ""
    # Template ids, one per purpose; each template has one variable, the code ({1} / ${code}).
    sms_template_register: str = ""
    sms_template_login: str = ""
    sms_template_cancel_seal: str = ""
    sms_template_reset_password: str = ""  # 忘记登录密码
    # Codes confirming a copy of the user's data (导出我的信息) and the deletion of the account.
    sms_template_export_data: str = ""
    sms_template_delete_account: str = ""
    sms_tencent_app_id: str = ""  # SmsSdkAppId
    sms_region: str = ""  # "ap-guangzhou" (Tencent) / "cn-hangzhou" (Alibaba) when empty
    # Host of the provider's API, only to point at a private endpoint or a test double.
    sms_endpoint: str = ""
    sms_endpoint_scheme: str = Field(default="https", pattern="^(https|http)$")
    sms_timeout_seconds: float = 10.0
    # Abuse limits besides the per-phone ones (sms.py): per chat identity a day, per client IP an
    # hour, and a budget of codes the whole platform sends in an hour.
    sms_daily_limit_per_identity: int = 10
    sms_hourly_limit_per_ip: int = 10
    sms_hourly_budget: int = 600
    # Sends from one web-chat session or IP (an hour) before an image captcha is asked for.
    sms_captcha_after: int = 3
    # E-mail (invoices, opt-in status notices); no host means no e-mail is sent or mentioned.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = Field(default="starttls", pattern="^(starttls|ssl|none)$")
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""
    smtp_timeout_seconds: float = 20.0
    # "sandbox": the platform draws a sample PDF (watermarked 样例, embedded default only);
    # "manual": staff upload the invoice issued in the tax system (production default);
    # "nuonuo": the Nuonuo open platform issues it. Empty: sandbox, or manual in production.
    invoice_provider: str = Field(default="", pattern="^(|sandbox|manual|nuonuo)$")
    invoice_tax_rate: str = "0.06"
    invoice_drawer: str = ""  # 开票人; empty: the staff member who issues it
    invoice_seller_address: str = ""  # 地址、电话
    invoice_seller_bank: str = ""  # 开户行及账号
    nuonuo_app_key: str = ""
    nuonuo_app_secret: SecretStr = SecretStr("")
    nuonuo_access_token: SecretStr = SecretStr("")
    nuonuo_url: str = "https://sdk.nuonuo.com/open/v1/services"
    nuonuo_poll_seconds: float = 3.0  # between queries of the result; issuing takes seconds
    # Who runs the service, shown in the FAQ, the chat header, invoices and the pay page.
    operator_service_name: str = "电子印章服务"
    operator_company: str = ""
    operator_hotline: str = ""
    operator_support_hours: str = ""

    @property
    def effective_invoice_provider(self) -> str:
        return self.invoice_provider or ("manual" if self.production else "sandbox")

    # --- Production station (seal_platform/production/station.py) ---
    # "remote": staff's `ukey-bridge` on the production PC, paired from the console;
    # "local": seals are written on blank UKeys through this PKCS#11 module on the platform host;
    # "demo": a simulated blank UKey per seal (refused in production mode).
    production_station: str = Field(default="demo", pattern="^(demo|local|remote)$")
    station_pkcs11_module: str = ""
