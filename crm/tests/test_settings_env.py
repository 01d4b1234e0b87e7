"""What crm/settings.py refuses to start with: read in a fresh interpreter for each environment,
as a server process would read it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
NAMES = ("RAPPORT_ENV", "DEBUG", "SECRET_KEY", "SITE_URL", "TRUSTED_PROXY_COUNT")


def _settings(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in NAMES}
    environment.update(env)
    code = (
        "import crm.settings as s; "
        "print(s.DEBUG, s.SITE_URL, s.ALLAUTH_TRUSTED_PROXY_COUNT, s.SECRET_KEY[:12])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_development_needs_nothing_set():
    result = _settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "http://127.0.0.1:8000", "0", "development-"]


def test_debug_off_refuses_the_public_development_key():
    result = _settings(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when RAPPORT_ENV is not 'development' or DEBUG is off" in (
        result.stderr
    )
    assert _settings(DEBUG="false", SECRET_KEY="x" * 50).returncode == 0


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SITE_URL"])
def test_production_refuses_to_start_without(missing):
    env = {"RAPPORT_ENV": "production", "SECRET_KEY": "k" * 50, "SITE_URL": "https://r.example"}
    del env[missing]
    result = _settings(**env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_production_trusts_one_proxy_unless_told_otherwise():
    env = {"RAPPORT_ENV": "production", "SECRET_KEY": "k" * 50, "SITE_URL": "https://r.example"}
    assert _settings(**env).stdout.split()[:3] == ["False", "https://r.example", "1"]
    assert _settings(**env, TRUSTED_PROXY_COUNT="0").stdout.split()[2] == "0"
