"""``ResultsConfig.load``: an option that cannot be read is named, and nothing it printed leaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from airflow_provider_fuse.results.config import ResultsConfigError

# What a misconfigured _cmd may print before it fails: the key itself.
PRINTED_KEY = "k3y-PRINTED-by-a-failing-command-0123456789"


def failing_command(tmp_path: Path) -> str:
    script = tmp_path / "signing-key.sh"
    script.write_text(f"#!/bin/sh\necho {PRINTED_KEY}\necho 'vault: token {PRINTED_KEY[::-1]}' >&2\nexit 1\n")
    script.chmod(0o755)
    return str(script)


def run_load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """ResultsConfig.load() in a fresh process (Airflow reads its configuration at import)."""
    script = (
        "import sys\n"
        "from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError\n"
        "try:\n"
        "    ResultsConfig.load()\n"
        "except ResultsConfigError as error:\n"
        "    print('REFUSED', type(error.__cause__).__name__, error.__suppress_context__)\n"
        "    raise\n"
    )
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**base, "AIRFLOW_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_failing_signing_key_command_is_named_and_its_output_never_shown(tmp_path: Path) -> None:
    done = run_load(tmp_path, AIRFLOW__FUSE__RESULTS_SIGNING_KEY_CMD=failing_command(tmp_path))

    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "REFUSED NoneType True" in done.stdout  # no cause, no context shown
    assert "results_signing_key could not be read" in done.stderr
    assert PRINTED_KEY not in output
    assert PRINTED_KEY[::-1] not in output


def test_any_error_reading_an_option_becomes_a_results_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_fuse import _compat
    from airflow_provider_fuse.results.config import ResultsConfig

    def failing_get(*args: object, **kwargs: object) -> str:
        raise RuntimeError(f"the command printed {PRINTED_KEY}")

    monkeypatch.setattr(_compat.conf, "get", failing_get)

    with pytest.raises(ResultsConfigError) as caught:
        ResultsConfig.load()

    assert "RuntimeError" in str(caught.value)
    assert PRINTED_KEY not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# --- Messages that say what to do next (issue 18) -----------------------------------------------------


def test_a_short_signing_key_is_refused_with_how_to_make_one() -> None:
    from airflow_provider_fuse.results.config import ResultsConfig

    short = "s3cr3t-but-short"
    config = ResultsConfig(base_url=None, conn_id="c", table="t", signing_key=short)
    with pytest.raises(ResultsConfigError) as caught:
        config.require_signing_key()
    message = str(caught.value)
    assert "[fuse] results_signing_key is shorter than" in message
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert short not in message


# --- results_base_url is the api-server's root: the provider adds /fuse/results/<token> ---------------

_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)


@given(
    prefix=st.lists(_SEGMENT, max_size=3),
    receivers=st.sampled_from(["fuse", "fuse/", "fuse/results", "fuse/results/", "fuse/results/tok"]),
)
def test_a_base_url_holding_the_receivers_own_path_is_refused_naming_the_option(
    prefix: list[str], receivers: str
) -> None:
    from airflow_provider_fuse.results.config import check_base_url

    url = "https://airflow.example.com/" + "".join(f"{segment}/" for segment in prefix) + receivers
    with pytest.raises(ResultsConfigError) as caught:
        check_base_url(url)
    message = str(caught.value)
    assert message.startswith("[fuse] results_base_url must be the api-server's root URL")
    assert "/fuse/results/<token>" in message
    assert "airflow.example.com" not in message  # names the option, never its value


@given(path=st.lists(_SEGMENT, max_size=3), slash=st.booleans())
def test_a_base_url_below_another_path_is_kept(path: list[str], slash: bool) -> None:
    from airflow_provider_fuse.results.config import check_base_url

    assume(path[-1:] != ["fuse"])
    base = "https://airflow.example.com" + "".join(f"/{segment}" for segment in path)
    assert check_base_url(base + ("/" if slash else "")) == base
    assert check_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
