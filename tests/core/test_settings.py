"""Settings: defaults, POSTWISE_* environment variables, a TOML file, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from postwise.core.settings import SHIPPED_MODEL_DIR, Settings, get_settings

pytestmark = pytest.mark.usefixtures("postwise_env")


def _clear_postwise_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POSTWISE_DATA_DIR", "POSTWISE_MODEL_PATH", "POSTWISE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_postwise_env(monkeypatch)
    settings = Settings()
    assert settings.environment == "local"
    assert settings.api_host == "127.0.0.1"
    assert settings.api_port == 8025
    assert settings.max_message_bytes == 40 * 1024 * 1024
    assert settings.store_verdicts is True
    assert settings.resolved_model_path == SHIPPED_MODEL_DIR / "inbound"
    assert (
        settings.resolved_database_url == f"sqlite:///{Path('postwise-data') / 'postwise.sqlite3'}"
    )


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POSTWISE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POSTWISE_API_PORT", "9100")
    monkeypatch.setenv("POSTWISE_MAX_MESSAGE_BYTES", "1048576")
    monkeypatch.setenv("POSTWISE_STORE_VERDICTS", "false")
    monkeypatch.setenv("POSTWISE_ENVIRONMENT", "production")
    monkeypatch.setenv("POSTWISE_ENGAGE_HMAC_KEY", "k" * 32)  # production refuses to run without
    monkeypatch.setenv("POSTWISE_POLICY_PATH", str(tmp_path / "ops.toml"))
    settings = Settings()
    assert settings.data_dir == tmp_path / "state"
    assert settings.api_port == 9100
    assert settings.max_message_bytes == 1048576
    assert settings.store_verdicts is False
    assert settings.environment == "production"
    assert settings.policy_path == tmp_path / "ops.toml"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'state' / 'postwise.sqlite3'}"


def test_database_url_overrides_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTWISE_DATABASE_URL", "postgresql+psycopg://pw@db.internal/postwise")
    assert Settings().resolved_database_url == "postgresql+psycopg://pw@db.internal/postwise"


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTWISE_API_PORT", "9001")
    first = get_settings()
    monkeypatch.setenv("POSTWISE_API_PORT", "9002")
    assert get_settings() is first
    assert get_settings().api_port == 9001
    get_settings.cache_clear()
    assert get_settings().api_port == 9002


def test_toml_file_named_by_postwise_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "conf" / "site.toml"
    config.parent.mkdir()
    config.write_text(
        'api_port = 8999\nmax_mime_depth = 7\nenvironment = "production"\n'
        f'engage_hmac_key = "{"k" * 32}"\n'
        f'data_dir = "{(tmp_path / "toml-data").as_posix()}"\n'
    )
    _clear_postwise_env(monkeypatch)
    monkeypatch.setenv("POSTWISE_CONFIG", str(config))
    settings = Settings()
    assert settings.api_port == 8999
    assert settings.max_mime_depth == 7
    assert settings.environment == "production"
    assert settings.data_dir == tmp_path / "toml-data"


def test_precedence_arguments_then_environment_then_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text("api_port = 8999\nmax_mime_parts = 50\nmax_mime_depth = 7\n")
    monkeypatch.setenv("POSTWISE_CONFIG", str(config))
    monkeypatch.setenv("POSTWISE_API_PORT", "9100")
    monkeypatch.setenv("POSTWISE_MAX_MIME_PARTS", "60")
    settings = Settings(max_mime_parts=70)
    assert settings.api_port == 9100  # environment over file
    assert settings.max_mime_parts == 70  # argument over environment
    assert settings.max_mime_depth == 7  # file over default


def test_postwise_toml_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "postwise.toml").write_text("api_port = 8123\n")  # cwd is tmp_path
    assert Settings().api_port == 8123


def test_unknown_key_in_the_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("api_prot = 8999\n")
    monkeypatch.setenv("POSTWISE_CONFIG", str(config))
    with pytest.raises(ValidationError, match="api_prot"):
        Settings()


def test_unknown_argument_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_messages_bytes"):
        Settings(max_messages_bytes=10)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("POSTWISE_ENVIRONMENT", "staging", "environment must be local, test or production"),
        ("POSTWISE_API_PORT", "70000", "api_port"),
        ("POSTWISE_API_PORT", "eighty", "api_port"),
        ("POSTWISE_MAX_MESSAGE_BYTES", "0", "max_message_bytes"),
        ("POSTWISE_MAX_MIME_DEPTH", "-1", "max_mime_depth"),
        ("POSTWISE_STORE_VERDICTS", "perhaps", "store_verdicts"),
    ],
)
def test_invalid_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=fragment):
        Settings()


def test_invalid_environment_name_is_refused_by_get_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from postwise.core.errors import SettingsError

    monkeypatch.setenv("POSTWISE_ENVIRONMENT", "prod")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match=r"environment: .*'prod'"):
        get_settings()


def test_get_settings_turns_bad_values_into_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from postwise.core.errors import SettingsError
    from postwise.core.settings import get_settings

    monkeypatch.setenv("POSTWISE_API_PORT", "abc")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="api_port"):
            get_settings()
    finally:
        monkeypatch.delenv("POSTWISE_API_PORT")
        get_settings.cache_clear()
