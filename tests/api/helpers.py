"""Helpers of the management-API tests: signed-in clients, admins, polling, local
recording HTTP servers (payment provider, alert webhook) and Stripe signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

from vaultgate.accounts.keys import create_key
from vaultgate.accounts.users import create_user
from vaultgate.storage.database import create_engine

T = TypeVar("T")
ERROR_KEYS = {"message", "type", "param", "code"}
PASSWORD = "correct horse battery"
POLL_TIMEOUT_S = 10.0
CSRF_HEADER = "X-CSRF-Token"
_addresses = itertools.count(1)
_emails = itertools.count(1)


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check the status and the exact OpenAI error shape; return the inner object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == ERROR_KEYS
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


def new_address() -> str:
    """A client address of its own, sent as X-Forwarded-For (which a server started with
    VAULTGATE_TRUST_PROXY_HEADERS takes as the client's address)."""
    number = next(_addresses)
    return f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"


def new_email(stem: str = "user") -> str:
    """An email address no other test uses."""
    return f"{stem}{next(_emails)}-{time.monotonic_ns()}@example.com"


class ApiSession:
    """A browser-like client: the session cookie in its jar, the CSRF token on every
    request (set to None to leave it out)."""

    def __init__(
        self, base_url: str, *, address: str | None = None, seen: list[str] | None = None
    ) -> None:
        headers = {"X-Forwarded-For": address or new_address()}
        hooks = {"response": [self._keep]}
        self.http = httpx.Client(
            base_url=base_url + "/api", headers=headers, timeout=30, event_hooks=hooks
        )
        self.seen = seen
        self.csrf: str | None = None
        self.user: dict[str, Any] = {}

    def _keep(self, response: httpx.Response) -> None:
        if self.seen is not None:
            self.seen.append(response.read().decode(errors="replace"))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with the CSRF header when a token is known."""
        headers = dict(kwargs.pop("headers", {}))
        if self.csrf is not None:
            headers.setdefault(CSRF_HEADER, self.csrf)
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST."""
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        """PATCH."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE."""
        return self.request("DELETE", path, **kwargs)

    def adopt(self, response: httpx.Response) -> httpx.Response:
        """Take the user and CSRF token of a sign-in answer."""
        assert response.status_code in (200, 201), response.text
        self.csrf = response.json()["csrf_token"]
        self.user = response.json()["user"]
        return response

    def login(self, email: str, password: str = PASSWORD) -> ApiSession:
        """Sign in; fails the test if refused."""
        self.adopt(self.post("/auth/login", json={"email": email, "password": password}))
        return self

    @property
    def cookie(self) -> str:
        """The current session cookie value."""
        value = self.http.cookies.get("vg_session")
        assert value
        return value

    def balance_micros(self) -> int:
        """The spendable balance."""
        response = self.get("/balance")
        assert response.status_code == 200, response.text
        return int(response.json()["balance_micros"])

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


class Accounts:
    """Makes signed-in and anonymous clients of one server, and closes them all."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.seen: list[str] = []
        self._sessions: list[ApiSession] = []

    def anonymous(self, *, address: str | None = None) -> ApiSession:
        """A client without a session; every response body it reads goes to ``seen``."""
        session = ApiSession(self.base_url, address=address, seen=self.seen)
        self._sessions.append(session)
        return session

    def register(self, *, email: str | None = None, password: str = PASSWORD) -> ApiSession:
        """A new account, signed in."""
        session = self.anonymous()
        email = email or new_email()
        body = {"email": email, "username": email.split("@")[0][:60], "password": password}
        session.adopt(session.post("/auth/register", json=body))
        return session

    def login(self, email: str, password: str = PASSWORD) -> ApiSession:
        """A new client signed in to an existing account."""
        return self.anonymous().login(email, password)

    def close(self) -> None:
        """Close every client made."""
        for session in self._sessions:
            session.close()


def make_admin(database_url: str, email: str | None = None) -> tuple[int, str, str]:
    """An admin account with an API key; returns its id, email and key."""
    email = email or new_email("admin")

    async def run() -> tuple[int, str]:
        engine = create_engine(database_url)
        try:
            user = await create_user(
                engine, email=email, username=email.split("@")[0][:60], password=PASSWORD,
                is_admin=True,
            )  # fmt: skip
            key, _ = await create_key(engine, user_id=user.id, name="admin")
            return user.id, key
        finally:
            await engine.dispose()

    user_id, key = asyncio.run(run())
    return user_id, email, key


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


def chat(base_url: str, key: str, model: str, **extra: Any) -> httpx.Response:
    """One non-streamed chat request on /v1."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(
        base_url + "/v1/chat/completions", json=body, headers=bearer(key), timeout=30
    )


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Call ``probe`` until ``done`` holds of its result, within a bounded time."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.05)


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's ``Stripe-Signature`` header: ``t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>">``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@dataclass
class Received:
    """One request a recording server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class RecordingServer:
    """A tiny HTTP server on 127.0.0.1 that records each request and answers ``reply``."""

    reply: dict[str, Any] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Root URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RecordingServer:
        """Listen on a free port in a background thread."""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
                payload = json.dumps(recorder.reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def recording_server(reply: dict[str, Any] | None = None) -> Iterator[RecordingServer]:
    """A started RecordingServer, stopped afterwards (for fixtures)."""
    server = RecordingServer(reply or {}).start()
    try:
        yield server
    finally:
        server.stop()
