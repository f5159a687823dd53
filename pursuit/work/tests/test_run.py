"""`pursuit run` end to end: the real web server and worker processes, a real SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from pursuit.conftest import free_port
from pursuit.intake.tests.test_intake import adf
from pursuit.work.tests.test_worker import database_url


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.mark.django_db(transaction=True)
def test_run_serves_the_api_and_the_worker_answers_the_lead(rooftop, bdc_team, source_token, smtp_server):
    _, token = source_token
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "PURSUIT_WORKER_POLL_SECONDS": "0.05",
        "PURSUIT_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "pursuit.cli", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/login/")
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5)
        assert login.status == 200 and b"Password" in login.read()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/intake/adf",
            data=adf("Ann", "Lee", "ann@example.com"),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        )
        started = time.monotonic()
        answer = urllib.request.urlopen(request, timeout=10)
        assert answer.status == 201
        lead = __import__("json").loads(answer.read())["lead"]
        wanted = f"<auto-response.{lead}@lakesidehonda.example>"
        while wanted not in smtp_server.message_ids() and time.monotonic() - started < 20:
            time.sleep(0.05)
        assert wanted in smtp_server.message_ids()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=15)
    assert f"Pursuit is running at http://127.0.0.1:{port}/" in output
    assert "alice" in output  # the logins are printed
