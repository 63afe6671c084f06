"""``web.settings.from_env``: one settings object from ``LAOWU_*`` variables."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from marketplace.crypto import decode_key, new_data_key
from web.settings import SettingsError, from_env

SECRET = "s" * 40


def _prod(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "LAOWU_ENV": "production",
        "LAOWU_VAR_DIR": str(tmp_path),
        "LAOWU_DATA_KEY": new_data_key(),
        "LAOWU_SECRET_KEY": SECRET,
    }
    env.update(extra)
    return env


def test_defaults_use_sqlite_under_the_var_dir(tmp_path: Path) -> None:
    settings = from_env({"LAOWU_VAR_DIR": str(tmp_path)})
    assert settings.env == "development"
    assert not settings.production
    assert settings.db.url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/laowu.db"
    assert settings.media_dir == tmp_path / "media"
    assert settings.search.url is None
    assert settings.stripe.api_base == "https://api.stripe.com"
    assert settings.outbox_in_process
    assert not settings.security.secure_cookies


def test_default_var_dir_is_relative_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = from_env({})
    assert settings.var_dir == Path("var")
    assert settings.db.url == "sqlite+aiosqlite:///var/laowu.db"
    assert (tmp_path / "var" / "data.key").exists()


def test_development_generates_keys_once_and_keeps_them(tmp_path: Path) -> None:
    var = tmp_path / "fresh" / "var"
    first = from_env({"LAOWU_VAR_DIR": str(var)})
    key_file = var / "data.key"
    assert key_file.read_text().strip() == first.security.data_key
    assert len(decode_key(first.security.data_key)) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "secret.key").stat().st_mode) == 0o600
    second = from_env({"LAOWU_VAR_DIR": str(var)})
    assert second.security.data_key == first.security.data_key
    assert second.security.secret_key == first.security.secret_key
    first.security.cipher()  # usable


def test_environment_keys_win_over_files(tmp_path: Path) -> None:
    key = new_data_key()
    settings = from_env(
        {"LAOWU_VAR_DIR": str(tmp_path), "LAOWU_DATA_KEY": key, "LAOWU_SECRET_KEY": SECRET}
    )
    assert (settings.security.data_key, settings.security.secret_key) == (key, SECRET)
    assert not (tmp_path / "data.key").exists()


def test_empty_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.key").write_text("\n")
    with pytest.raises(SettingsError, match="LAOWU_DATA_KEY"):
        from_env({"LAOWU_VAR_DIR": str(tmp_path)})


@pytest.mark.parametrize("missing", ["LAOWU_DATA_KEY", "LAOWU_SECRET_KEY"])
def test_production_refuses_to_start_without_a_key(tmp_path: Path, missing: str) -> None:
    env = _prod(tmp_path)
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        from_env(env)
    assert list(tmp_path.iterdir()) == []  # nothing generated


def test_production_ignores_key_files_left_by_development(tmp_path: Path) -> None:
    from_env({"LAOWU_VAR_DIR": str(tmp_path)})  # writes var/data.key and var/secret.key
    env = _prod(tmp_path)
    del env["LAOWU_DATA_KEY"]
    with pytest.raises(SettingsError, match="LAOWU_DATA_KEY"):
        from_env(env)


def test_production_with_keys(tmp_path: Path) -> None:
    env = _prod(tmp_path, LAOWU_DATABASE_URL="postgresql+asyncpg://laowu@db:5432/laowu")
    settings = from_env(env)
    assert settings.production
    assert settings.security.secure_cookies
    assert settings.db.url == "postgresql+asyncpg://laowu@db:5432/laowu"


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LAOWU_SECRET_KEY"):
        from_env(_prod(tmp_path, LAOWU_SECRET_KEY="short"))


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-key!",
        base64.urlsafe_b64encode(b"k" * 16).decode(),
        base64.urlsafe_b64encode(b"k" * 33).decode(),
        base64.b64encode(b"\xff" * 32).decode(),
    ],
    ids=["not-base64url", "16-bytes", "33-bytes", "standard-base64"],
)
@pytest.mark.parametrize("mode", ["development", "production"])
def test_invalid_data_key_is_refused(tmp_path: Path, bad: str, mode: str) -> None:
    env = _prod(tmp_path, LAOWU_DATA_KEY=bad, LAOWU_ENV=mode)
    with pytest.raises(SettingsError, match="LAOWU_DATA_KEY") as caught:
        from_env(env)
    assert bad not in str(caught.value)


def test_invalid_key_in_the_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.key").write_text("garbage\n")
    with pytest.raises(SettingsError, match="LAOWU_DATA_KEY"):
        from_env({"LAOWU_VAR_DIR": str(tmp_path)})


def test_old_data_keys_are_checked_and_used(tmp_path: Path) -> None:
    old = new_data_key()
    settings = from_env(_prod(tmp_path, LAOWU_OLD_DATA_KEYS=f" {old} ,"))
    assert settings.security.old_data_keys == (old,)
    with pytest.raises(SettingsError, match="LAOWU_OLD_DATA_KEYS"):
        from_env(_prod(tmp_path, LAOWU_OLD_DATA_KEYS="nope"))


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LAOWU_ENV"):
        from_env({"LAOWU_ENV": "staging", "LAOWU_VAR_DIR": str(tmp_path)})


def test_services_and_directories_are_read(tmp_path: Path) -> None:
    settings = from_env(
        {
            "LAOWU_VAR_DIR": str(tmp_path),
            "LAOWU_MEDIA_DIR": "/srv/laowu/media",
            "LAOWU_SEARCH_URL": "http://meili:7700",
            "LAOWU_SEARCH_API_KEY": "meili-key",
            "LAOWU_STRIPE_API_BASE": "http://localhost:8420",
            "LAOWU_STRIPE_API_KEY": "sk_test_123",
            "LAOWU_STRIPE_WEBHOOK_SECRET": "whsec_123",
            "LAOWU_OUTBOX_IN_PROCESS": "0",
            "LAOWU_DATABASE_URL": "sqlite+aiosqlite:////tmp/elsewhere.db",
        }
    )
    assert settings.media_dir == Path("/srv/laowu/media")
    assert (settings.search.url, settings.search.api_key) == ("http://meili:7700", "meili-key")
    assert settings.stripe.api_base == "http://localhost:8420"
    assert (settings.stripe.api_key, settings.stripe.webhook_secret) == ("sk_test_123", "whsec_123")
    assert not settings.outbox_in_process
    assert settings.db.url == "sqlite+aiosqlite:////tmp/elsewhere.db"


def test_empty_variables_mean_the_default(tmp_path: Path) -> None:
    settings = from_env(
        {
            "LAOWU_VAR_DIR": str(tmp_path),
            "LAOWU_SEARCH_URL": "",
            "LAOWU_STRIPE_API_BASE": "",
            "LAOWU_MEDIA_DIR": "",
            "LAOWU_DATABASE_URL": "",
        }
    )
    assert settings.search.url is None
    assert settings.stripe.api_base == "https://api.stripe.com"
    assert settings.media_dir == tmp_path / "media"
    assert settings.db.url.endswith(f"{tmp_path.as_posix()}/laowu.db")


def test_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAOWU_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("LAOWU_SEARCH_URL", "http://search:7700")
    assert from_env().search.url == "http://search:7700"
