"""Settings: every one is documented and read from its VAULTGATE_ variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultgate.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented_in_readme(name: str) -> None:
    assert f"`VAULTGATE_{name.upper()}`" in README.read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_has_description(name: str) -> None:
    assert Settings.model_fields[name].description


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTGATE_PORT", "9999")
    monkeypatch.setenv("VAULTGATE_OFFLINE_PROVIDER", "false")
    settings = Settings()
    assert settings.port == 9999
    assert settings.offline_provider is False


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    url = settings.resolved_database_url()
    assert url.startswith("sqlite+aiosqlite:///")
    assert url.endswith(str(tmp_path.resolve() / "vaultgate.db"))
