"""A real HTTP server speaking Vertex AI's Gemini and Imagen wire formats, with Google's
OAuth2 token endpoint in front of them.

Routes, on 127.0.0.1:

- ``POST /token``: the JWT bearer grant
  (https://developers.google.com/identity/protocols/oauth2/service-account#httprest). The
  assertion's RS256 signature is verified against the test key's public key and its claims
  (``iss``, ``aud`` = Google's token URL, ``scope`` = cloud-platform, ``exp`` at most an hour after
  ``iat``) are checked; a good one gets ``{"access_token", "expires_in", "token_type"}``,
  anything else OAuth's ``{"error": "invalid_grant", ...}`` with 400.
- ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:...``:
  ``generateContent``, ``streamGenerateContent?alt=sse`` (answered as ``fake_gemini``) and
  ``predict`` for ``imagen-*`` models (``fake_imagen``), only with a bearer token this server
  issued (or ``static_tokens``): otherwise Vertex's 401 UNAUTHENTICATED. A project or
  location other than the expected one is a 403 PERMISSION_DENIED; invalid ``labels`` a 400.
- ``POST /v1beta/models/{model}:...``: the Gemini API, as ``fake_gemini``, plus ``predict``
  for ``imagen-*`` models; a ``labels`` member is refused there, as the Gemini API's strict
  JSON parsing refuses unknown fields.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.fake_gemini import FakeGemini, Recorded, _error
from tests.support.fake_imagen import predict_response

PROJECT = "vg-test-project"
LOCATION = "us-central1"
CLIENT_EMAIL = f"vaultgate@{PROJECT}.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience of every token-request JWT, whichever token_uri serves it.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
LABEL_KEY = re.compile(r"^[^\W\dA-Z_][\w-]{0,62}$")
LABEL_VALUE = re.compile(r"^[\w-]{0,63}$")
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential."
)


def make_test_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key for a test service account."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_info(key: rsa.RSAPrivateKey, token_uri: str) -> dict[str, str]:
    """A service-account key file's content for ``key``."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenRequest:
    """One call to the token endpoint: the form and the decoded JWT."""

    form: dict[str, str]
    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass
class FakeVertex(FakeGemini):
    """The fake Gemini server, plus Vertex's paths and the token endpoint."""

    public_key: rsa.RSAPublicKey | None = None
    expires_in: int = 3600
    static_tokens: set[str] = field(default_factory=set)
    token_requests: list[TokenRequest] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def token_uri(self) -> str:
        """Where the test key's ``token_uri`` points."""
        return f"{self.base_url}/token"

    def add_routes(self, app: web.Application) -> None:
        """The Gemini API's routes, Vertex's and the token endpoint."""
        super().add_routes(app)
        app.router.add_post("/token", self._token)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
            self._vertex,
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        header, claims, problem = self._verify(form)
        self.token_requests.append(TokenRequest(form, header, claims))
        if problem is not None:
            failure = {"error": "invalid_grant", "error_description": problem}
            return web.json_response(failure, status=400)
        token = f"ya29.fake-token-{next(self._serial)}"
        self.issued.add(token)
        body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        return web.json_response(body)

    def _verify(self, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        if form.get("grant_type") != JWT_BEARER:
            return {}, {}, "Invalid grant_type"
        try:
            head, payload, signature = form["assertion"].split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(payload))
        except (KeyError, ValueError):
            return {}, {}, "Invalid JWT"
        assert self.public_key is not None
        try:
            self.public_key.verify(
                _unb64(signature), f"{head}.{payload}".encode(),
                padding.PKCS1v15(), hashes.SHA256(),
            )  # fmt: skip
        except InvalidSignature:
            return header, claims, "Invalid JWT Signature."
        return header, claims, _claims_problem(header, claims)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or token not in self.issued | self.static_tokens:
            return _error(401, UNAUTHENTICATED)
        if (request.match_info["project"], request.match_info["location"]) != (
            PROJECT,
            LOCATION,
        ):
            return _error(403, "Permission 'aiplatform.endpoints.predict' denied")
        body = await request.json()
        problem = _labels_problem(body.get("labels"))
        if problem is not None:
            return _error(400, problem)
        return await self._answer(request, body, vertex=True)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        """The Gemini API path: no ``labels`` field exists there."""
        body = await request.json()
        if "labels" in body:
            return _error(400, 'Invalid JSON payload received. Unknown name "labels"')
        return await self._answer(request, body, vertex=False)

    async def _answer(
        self, request: web.Request, body: dict[str, Any], *, vertex: bool
    ) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        behaviour = model.split("~")[0]
        if method != "predict" or not behaviour.startswith("imagen-"):
            return await super()._generate(request)
        headers = dict(request.headers)
        self.requests.append(Recorded(model, method, dict(request.query), headers, body))
        imagen = behaviour.removeprefix("imagen-")
        return predict_response(imagen, body, vertex=vertex, error=_error)


def _claims_problem(header: dict[str, Any], claims: dict[str, Any]) -> str | None:
    now = time.time()
    if header.get("alg") != "RS256":
        return "Invalid JWT: alg must be RS256"
    if claims.get("iss") != CLIENT_EMAIL or claims.get("aud") != TOKEN_AUDIENCE:
        return "Invalid JWT: iss or aud"
    if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        return "Invalid JWT: scope"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600:
        return "Invalid JWT: Token must be a short-lived token (60 minutes)"
    if abs(iat - now) > 300:
        return "Invalid JWT: iat is not near the current time"
    return None


def _labels_problem(labels: Any) -> str | None:
    if labels is None:
        return None
    if not isinstance(labels, dict):
        return "Invalid value at 'labels': expected a map"
    for key, value in labels.items():
        if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
            return f"Label key or value is invalid: {key!r}"
        if key.lower() != key or str(value).lower() != str(value):
            return f"Labels must be lowercase: {key!r}"
    return None
