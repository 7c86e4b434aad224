"""OAuth2 access tokens for Google Cloud APIs (Vertex AI), from a service-account key.

A service-account key is the JSON file Google Cloud issues for a service account
(``type: service_account``, ``client_email``, ``private_key``, ``private_key_id``,
``token_uri``). A token is obtained with the JWT bearer grant
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest): a JWT
signed RS256 with the key, claims ``iss`` (the client email), ``scope`` (cloud-platform),
``aud`` (always ``https://oauth2.googleapis.com/token``, whatever the key's ``token_uri``, as
the page above says and Google's own auth library does), ``iat`` and ``exp`` (one hour
later), is posted form-encoded (``grant_type`` the JWT bearer grant type, ``assertion`` the
JWT) to the ``token_uri``, which answers ``{"access_token", "expires_in", "token_type"}``
or ``{"error", "error_description"}``.

Tokens are kept until ``REFRESH_MARGIN_S`` before they expire. Concurrent requests that find
no valid token share one refresh: the first starts it and every other awaits the same task,
so a burst of requests costs one token exchange, and a failed exchange fails them all once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers.base import JsonObject
from vaultgate.providers.http import HttpClient

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, no secret)
TOKEN_AUDIENCE = DEFAULT_TOKEN_URI
ASSERTION_LIFETIME_S = 3600
REFRESH_MARGIN_S = 300
TOKEN_TIMEOUT_S = 30


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _credential_error(provider: str, reason: str) -> UpstreamError:
    """The deployment's credentials do not work: another deployment may still answer."""
    return UpstreamError(f"{provider} could not obtain an access token: {reason}", status=502)


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The parts of a service-account key a token exchange needs."""

    client_email: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    private_key_id: str = ""
    token_uri: str = DEFAULT_TOKEN_URI

    @classmethod
    def from_json(cls, raw: str | bytes) -> ServiceAccountKey:
        """Parse a key file's text; ValueError saying what is wrong (never the key)."""
        try:
            info = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("the service-account key is not JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ValueError("the key is not a service-account key")
        email, pem = info.get("client_email"), info.get("private_key")
        if not isinstance(email, str) or not isinstance(pem, str):
            raise ValueError("the key lacks client_email or private_key")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("the key's private_key is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the key's private_key is not an RSA key")
        return cls(
            client_email=email,
            private_key=key,
            private_key_id=str(info.get("private_key_id") or ""),
            token_uri=str(info.get("token_uri") or DEFAULT_TOKEN_URI),
        )

    def assertion(self, now: int, scope: str = CLOUD_PLATFORM_SCOPE) -> str:
        """The signed JWT offered to ``token_uri``."""
        header: JsonObject = {"alg": "RS256", "typ": "JWT"}
        if self.private_key_id:
            header["kid"] = self.private_key_id
        claims = {
            "iss": self.client_email,
            "scope": scope,
            "aud": TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
        signature = self.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


def read_service_account(source: str) -> ServiceAccountKey:
    """A key given inline (JSON text) or as the path of its file."""
    text = source.strip()
    if not text.startswith("{"):
        try:
            text = Path(text).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"the key file cannot be read ({type(exc).__name__})") from None
    return ServiceAccountKey.from_json(text)


class StaticToken:
    """An access token given by the operator; it is sent as is and never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token.strip()

    @property
    def current(self) -> str | None:
        """The token, for scrubbing it from error messages."""
        return self._token

    async def token(self) -> str:
        """The token."""
        return self._token

    def invalidate(self) -> None:
        """Nothing to forget: a static token stays what it is."""


class ServiceAccountTokens:
    """Access tokens minted from a service-account key, cached and refreshed once at a time."""

    def __init__(
        self,
        key_source: str,
        http: HttpClient,
        *,
        provider: str,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._key_source = key_source
        self._key: ServiceAccountKey | None = None
        self._http = http
        self._provider = provider
        self._clock = clock
        self._wall_clock = wall_clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._pending: asyncio.Task[str] | None = None

    @property
    def current(self) -> str | None:
        """The cached token, for scrubbing it from error messages."""
        return self._token

    async def token(self) -> str:
        """A valid access token, fetched when none is cached or it is about to expire."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        if self._pending is None:
            self._pending = asyncio.create_task(self._exchange())
            self._pending.add_done_callback(self._settled)
        # Shielded: a caller that goes away must not cancel the refresh others wait for.
        return await asyncio.shield(self._pending)

    def invalidate(self) -> None:
        """Forget the cached token (Google rejected it): the next request fetches another."""
        self._token = None

    def _settled(self, task: asyncio.Task[str]) -> None:
        self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved here, so a refresh nobody awaits is not logged

    async def _exchange(self) -> str:
        key = await self._load_key()
        body = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": key.assertion(
            int(self._wall_clock()))})  # fmt: skip
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            async with asyncio.timeout(TOKEN_TIMEOUT_S):
                async with self._http.session.post(
                    key.token_uri, data=body.encode(), headers=headers
                ) as response:
                    status, raw = response.status, await response.read()
        except TimeoutError:
            raise UpstreamTimeout(f"{self._provider}'s token endpoint did not answer") from None
        except aiohttp.ClientError as exc:
            raise _credential_error(self._provider, type(exc).__name__) from None
        return self._accept(status, raw)

    async def _load_key(self) -> ServiceAccountKey:
        if self._key is None:
            try:
                self._key = await asyncio.to_thread(read_service_account, self._key_source)
            except ValueError as exc:
                raise _credential_error(self._provider, str(exc)) from None
        return self._key

    def _accept(self, status: int, raw: bytes) -> str:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if status >= 400:
            # OAuth errors (RFC 6749 section 5.2): the code is safe to show, the key is not in it.
            reason = payload.get("error") if isinstance(payload.get("error"), str) else None
            raise _credential_error(self._provider, f"HTTP {status} {reason or ''}".strip())
        token, lifetime = payload.get("access_token"), payload.get("expires_in")
        if not isinstance(token, str) or not token:
            raise _credential_error(self._provider, "the token endpoint sent no access_token")
        lifetime = lifetime if isinstance(lifetime, int) and lifetime > 0 else 3600
        # Refresh well before expiry; a token shorter-lived than twice the margin at half-life.
        margin = min(REFRESH_MARGIN_S, lifetime // 2)
        self._token, self._refresh_at = token, self._clock() + lifetime - margin
        return token
