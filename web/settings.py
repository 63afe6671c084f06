"""One settings object, read from ``LAOWU_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from billing.config import BillingConfig
from marketplace.crypto import DataCipher, decode_key

DEFAULT_VAR = Path("var")


class SettingsError(RuntimeError):
    """The configuration is unusable; the message names the variable."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    echo: bool = False
    pooled: bool = True


@dataclass(frozen=True)
class SearchSettings:
    url: str | None = None  # Meilisearch; None means the embedded backend
    api_key: str | None = None


@dataclass(frozen=True)
class StripeSettings:
    api_base: str = "https://api.stripe.com"
    api_key: str | None = None
    webhook_secret: str | None = None
    # The employer's card form (docs/billing.md): Stripe.js and the publishable key.
    publishable_key: str | None = None
    js_url: str = "https://js.stripe.com/v3/"


@dataclass(frozen=True)
class SecuritySettings:
    secret_key: str
    data_key: str
    old_data_keys: tuple[str, ...] = ()
    secure_cookies: bool = False

    def cipher(self) -> DataCipher:
        return DataCipher(
            decode_key(self.data_key), old_keys=tuple(decode_key(k) for k in self.old_data_keys)
        )


@dataclass(frozen=True)
class Settings:
    env: str
    db: DatabaseSettings
    security: SecuritySettings
    search: SearchSettings = field(default_factory=SearchSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    billing: BillingConfig = field(default_factory=BillingConfig)
    media_dir: Path = DEFAULT_VAR / "media"
    var_dir: Path = DEFAULT_VAR
    # Drain the outbox inside the server process (the embedded default).
    outbox_in_process: bool = True
    outbox_interval_seconds: float = 2.0

    @property
    def production(self) -> bool:
        return self.env == "production"


MIN_PRODUCTION_SECRET = 32


def _key_file(var_dir: Path, name: str, variable: str) -> str:
    """Read a key kept in ./var, creating it (owner-only) on first start outside production."""
    path = var_dir / name
    if not path.exists():
        from marketplace.crypto import new_data_key

        var_dir.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting at once must not each write their own key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_data_key() + "\n")
    value = path.read_text().strip()
    if not value:
        raise SettingsError(f"{path} 是空文件：请删除它或设置 {variable}")
    return value


def _key(source: dict[str, str], variable: str, var_dir: Path, name: str, production: bool) -> str:
    """From the environment; outside production also from (or into) ``var_dir/name``.

    Production never reads or writes key files: a key generated for a laptop must not
    silently become the one that protects real people's data.
    """
    value = source.get(variable, "").strip()
    if value:
        return value
    if production:
        raise SettingsError(f"生产环境必须设置 {variable}")
    return _key_file(var_dir, name, variable)


def _check_data_key(value: str, variable: str) -> None:
    try:
        decode_key(value, name=variable)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def from_env(env: dict[str, str] | None = None) -> Settings:
    source = dict(os.environ if env is None else env)
    mode = source.get("LAOWU_ENV", "development")
    if mode not in ("development", "production", "test"):
        raise SettingsError(f"LAOWU_ENV 只能是 development、production 或 test，不能是 {mode!r}")
    production = mode == "production"
    var_dir = Path(source.get("LAOWU_VAR_DIR") or DEFAULT_VAR)
    data_key = _key(source, "LAOWU_DATA_KEY", var_dir, "data.key", production)
    _check_data_key(data_key, "LAOWU_DATA_KEY")
    secret_key = _key(source, "LAOWU_SECRET_KEY", var_dir, "secret.key", production)
    if production and len(secret_key) < MIN_PRODUCTION_SECRET:
        raise SettingsError(f"LAOWU_SECRET_KEY 太短：生产环境至少 {MIN_PRODUCTION_SECRET} 个字符")
    old_keys = tuple(
        k.strip() for k in source.get("LAOWU_OLD_DATA_KEYS", "").split(",") if k.strip()
    )
    for old in old_keys:
        _check_data_key(old, "LAOWU_OLD_DATA_KEYS")
    default_db = f"sqlite+aiosqlite:///{(var_dir / 'laowu.db').as_posix()}"
    return Settings(
        env=mode,
        db=DatabaseSettings(
            url=source.get("LAOWU_DATABASE_URL") or default_db,
            echo=source.get("LAOWU_DB_ECHO", "") == "1",
        ),
        security=SecuritySettings(
            secret_key=secret_key,
            data_key=data_key,
            old_data_keys=old_keys,
            secure_cookies=production,
        ),
        search=SearchSettings(
            url=source.get("LAOWU_SEARCH_URL") or None,
            api_key=source.get("LAOWU_SEARCH_API_KEY") or None,
        ),
        stripe=StripeSettings(
            api_base=source.get("LAOWU_STRIPE_API_BASE") or StripeSettings.api_base,
            api_key=source.get("LAOWU_STRIPE_API_KEY") or None,
            webhook_secret=source.get("LAOWU_STRIPE_WEBHOOK_SECRET") or None,
            publishable_key=source.get("LAOWU_STRIPE_PUBLISHABLE_KEY") or None,
            js_url=source.get("LAOWU_STRIPE_JS_URL") or StripeSettings.js_url,
        ),
        billing=_billing(source),
        media_dir=Path(source.get("LAOWU_MEDIA_DIR") or var_dir / "media"),
        var_dir=var_dir,
        outbox_in_process=source.get("LAOWU_OUTBOX_IN_PROCESS", "1") != "0",
    )


def _billing(source: dict[str, str]) -> BillingConfig:
    values = {}
    for name, variable in (
        ("approval_threshold_fen", "LAOWU_BILLING_APPROVAL_THRESHOLD_FEN"),
        ("payable_after_days", "LAOWU_BILLING_PAYABLE_AFTER_DAYS"),
        ("broker_fee_share_bp", "LAOWU_BILLING_BROKER_FEE_SHARE_BP"),
    ):
        raw = source.get(variable, "").strip()
        if raw:
            if not raw.isdigit():
                raise SettingsError(f"{variable} 应为非负整数，不能是 {raw!r}")
            values[name] = int(raw)
    if values.get("broker_fee_share_bp", 0) > 10_000:
        raise SettingsError("LAOWU_BILLING_BROKER_FEE_SHARE_BP 不能超过 10000（100%）")
    # Subsidies become payable when the month's assessment passed (docs/scoring.md),
    # unless a deployment that does not score asks for the days rule.
    gate = source.get("LAOWU_BILLING_PAYABLE_GATE", "").strip() or "assessment"
    if gate not in ("assessment", "days"):
        raise SettingsError(
            f"LAOWU_BILLING_PAYABLE_GATE 只能是 assessment 或 days，不能是 {gate!r}"
        )
    return BillingConfig(payable_gate=gate, **values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return from_env()
