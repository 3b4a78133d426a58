"""`evangelist serve` as an operator runs it: a real process, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import DEMO_ORG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()[1]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        # Polling a process we do not control: a short pause between tries is the only way.
        time.sleep(0.05)
    raise AssertionError("serve did not become ready")


def test_serve_migrates_becomes_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "EVANGELIST_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "EVANGELIST_CONFIG": str(DEMO_ORG),
        "EVANGELIST_PORT": str(port),
        "SLACK_BOT_TOKEN": "xoxb-never-logged-0001",
        "SLACK_SIGNING_SECRET": "signing-secret-never-logged",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"evangelist_outbox_pending" in response.read()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "shutting down" in stderr
    assert "never-logged" not in stderr


def _serve_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_invalid_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "org.yaml"
    broken.write_text("organisation:\n  name: x\npeople:\n  - id: Bad Id\n    name: x\n")
    env = {
        **os.environ,
        "EVANGELIST_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "EVANGELIST_CONFIG": str(broken),
        "EVANGELIST_PORT": "not-a-port",
    }
    result = _serve_once(env)
    assert result.returncode == 2
    assert "EVANGELIST_PORT='not-a-port'" in result.stderr
    env["EVANGELIST_PORT"] = str(_free_port())
    result = _serve_once(env)
    assert result.returncode == 2
    assert "people[0].id" in result.stderr
