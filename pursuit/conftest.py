"""Personas and shared fixtures: a rooftop with a manager, two BDC agents and a consultant, and
an agent of another rooftop (who must see nothing of the first)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pursuit.intake.models import AssignmentRule, LeadSource
from pursuit.org.models import DealerGroup, Role, Rooftop, Team, User

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "adf-corpus"
FIXTURES = Path(__file__).resolve().parent / "intake" / "tests" / "fixtures"
PASSWORD = "pursuit-test-pw"

# A Tuesday, mid-morning in Chicago: tests that care about the hour move from here.
T0 = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def make_user(rooftop, username, role, **extra) -> User:
    first, _, last = extra.pop("name", username.title()).partition(" ")
    return User.objects.create_user(
        username=username,
        password=PASSWORD,
        rooftop=rooftop,
        role=role,
        first_name=first,
        last_name=last,
        email=f"{username}@example.com",
        **extra,
    )


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Full-strength PBKDF2 on every persona is most of a test's time; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rooftop(db) -> Rooftop:
    group = DealerGroup.objects.create(name="Lakeside Auto Group")
    return Rooftop.objects.create(
        group=group,
        name="Lakeside Honda",
        time_zone="America/Chicago",
        country="US",
        email="sales@lakesidehonda.example",
        phone="+13125550100",
        street="100 Lake St",
        city="Chicago",
        region="IL",
        postal_code="60601",
    )


@pytest.fixture
def manager(rooftop) -> User:
    return make_user(rooftop, "maria", Role.MANAGER, name="Maria Manager")


@pytest.fixture
def agent(rooftop) -> User:
    return make_user(rooftop, "alice", Role.BDC_AGENT, name="Alice Agent", direct_line="+13125550111")


@pytest.fixture
def agent2(rooftop) -> User:
    return make_user(rooftop, "bob", Role.BDC_AGENT, name="Bob Agent", direct_line="+13125550112")


@pytest.fixture
def consultant(rooftop) -> User:
    return make_user(rooftop, "carl", Role.CONSULTANT, name="Carl Consultant")


@pytest.fixture
def bdc_team(rooftop, agent, agent2) -> Team:
    team = Team.objects.create(rooftop=rooftop, name="BDC")
    team.members.add(agent, agent2)
    AssignmentRule.objects.create(rooftop=rooftop, priority=10, lead_type="internet", team=team)
    return team


@pytest.fixture
def other_rooftop(db) -> Rooftop:
    group = DealerGroup.objects.create(name="Other Group")
    return Rooftop.objects.create(
        group=group, name="Faraway Ford", time_zone="America/Los_Angeles", email="sales@farawayford.example"
    )


@pytest.fixture
def outsider(other_rooftop) -> User:
    return make_user(other_rooftop, "olga", Role.BDC_AGENT, name="Olga Outsider")


@pytest.fixture
def source_token(rooftop) -> tuple[LeadSource, str]:
    source = LeadSource(rooftop=rooftop, name="Cars.com")
    token = source.new_token()
    source.save()
    return source, token


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPRecorder:
    """An aiosmtpd handler keeping every accepted message; refuses recipients at refused.example."""

    def __init__(self):
        import threading

        self.messages: list = []
        self.sessions = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback; Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    recorder = SMTPRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    recorder.port = port
    yield recorder
    controller.stop()


class TextProviderStandIn:
    """A real HTTP server on loopback speaking the part of Twilio's Messages API Pursuit uses:
    POST /2010-04-01/Accounts/{sid}/Messages.json with basic auth, answering 201 with a sid.
    "+15005550001" is refused with 400 (Twilio's invalid-number test number); `fail_next` makes
    the next request answer 503."""

    ACCOUNT, TOKEN = "ACtest0000", "secret-token"

    def __init__(self):
        import threading

        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.fail_next = 0

    def handler(self):
        import base64
        import json
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import parse_qs

        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, code: int, data: dict) -> None:
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                expected = (
                    "Basic " + base64.b64encode(f"{stand_in.ACCOUNT}:{stand_in.TOKEN}".encode()).decode()
                )
                if self.path != f"/2010-04-01/Accounts/{stand_in.ACCOUNT}/Messages.json":
                    return self._answer(404, {"code": 20404, "message": "not found"})
                if self.headers.get("Authorization") != expected:
                    return self._answer(401, {"code": 20003, "message": "Authenticate"})
                with stand_in.lock:
                    if stand_in.fail_next:
                        stand_in.fail_next -= 1
                        return self._answer(503, {"code": 20503, "message": "Service unavailable"})
                    if form.get("To") == "+15005550001":
                        return self._answer(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
                    stand_in.requests.append(form)
                    sid = f"SM{len(stand_in.requests):032d}"
                return self._answer(
                    201, {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")}
                )

        return Handler

    def bodies(self, to: str | None = None) -> list[str]:
        with self.lock:
            return [r["Body"] for r in self.requests if to is None or r["To"] == to]


@pytest.fixture
def text_provider(settings):
    """The stand-in provider on a loopback port, with TEXT_URL pointing at it."""
    import threading
    from http.server import ThreadingHTTPServer

    stand_in = TextProviderStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stand_in.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TEXT_URL = (
        f"twilio+http://{stand_in.ACCOUNT}:{stand_in.TOKEN}@127.0.0.1:{server.server_address[1]}"
    )
    yield stand_in
    server.shutdown()
    server.server_close()
