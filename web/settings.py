"""One settings object, read from ``LAOWU_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

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
    media_dir: Path = DEFAULT_VAR / "media"
    var_dir: Path = DEFAULT_VAR
    # Drain the outbox inside the server process (the embedded default).
    outbox_in_process: bool = True
    outbox_interval_seconds: float = 2.0

    @property
    def production(self) -> bool:
        return self.env == "production"


def _key_file(var_dir: Path, name: str, generate: bool) -> str | None:
    """Read a key kept in ./var, creating it on first start in development."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    if not generate:
        return None
    from marketplace.crypto import new_data_key

    var_dir.mkdir(parents=True, exist_ok=True)
    value = new_data_key()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def from_env(env: dict[str, str] | None = None) -> Settings:
    source = dict(os.environ if env is None else env)
    mode = source.get("LAOWU_ENV", "development")
    if mode not in ("development", "production", "test"):
        raise SettingsError(f"LAOWU_ENV must be development, production or test, not {mode!r}")
    production = mode == "production"
    var_dir = Path(source.get("LAOWU_VAR_DIR", str(DEFAULT_VAR)))
    data_key = source.get("LAOWU_DATA_KEY") or _key_file(var_dir, "data.key", not production)
    if not data_key:
        raise SettingsError("LAOWU_DATA_KEY is required in production (32 random bytes, base64url)")
    try:
        decode_key(data_key)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    secret_key = source.get("LAOWU_SECRET_KEY") or _key_file(var_dir, "secret.key", not production)
    if not secret_key:
        raise SettingsError("LAOWU_SECRET_KEY is required in production")
    old_keys = tuple(k for k in source.get("LAOWU_OLD_DATA_KEYS", "").split(",") if k.strip())
    default_db = f"sqlite+aiosqlite:///{(var_dir / 'laowu.db').as_posix()}"
    return Settings(
        env=mode,
        db=DatabaseSettings(
            url=source.get("LAOWU_DATABASE_URL", default_db),
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
            api_base=source.get("LAOWU_STRIPE_API_BASE", "https://api.stripe.com"),
            api_key=source.get("LAOWU_STRIPE_API_KEY") or None,
            webhook_secret=source.get("LAOWU_STRIPE_WEBHOOK_SECRET") or None,
        ),
        media_dir=Path(source.get("LAOWU_MEDIA_DIR", str(var_dir / "media"))),
        var_dir=var_dir,
        outbox_in_process=source.get("LAOWU_OUTBOX_IN_PROCESS", "1") != "0",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return from_env()
