"""AWS Signature Version 4: signing one HTTP request with an access key.

Follows https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html:
a canonical request (method, URI, query, headers, payload hash), a string to sign over its
hash and the credential scope, a signing key derived from the secret by four HMACs, and the
``Authorization`` header carrying the signature. The payload hash is taken over the exact
body bytes sent, so the body must be serialised once, before signing.

Paths are URI-encoded once more when canonicalised, as every service but S3 expects: a model
id sent as ``a%2Fb`` is signed as ``a%252Fb``. The URL given must be the one that goes on the
wire, byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers a proxy or the HTTP client may add or rewrite after signing; never signed.
UNSIGNED_HEADERS = frozenset({"authorization", "user-agent", "expect", "x-amzn-trace-id"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key pair, and the session token of temporary credentials."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _uri_encode(text: str) -> str:
    """Percent-encode everything but RFC 3986's unreserved characters."""
    return quote(text, safe="-_.~")


def host_header(url: str) -> str:
    """The ``Host`` header an HTTP client sends for ``url`` (port only when not default)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{parts.port}"
    return host


def canonical_uri(path: str) -> str:
    """The path, each segment URI-encoded again (``%`` itself becomes ``%25``)."""
    return quote(path or "/", safe="/~")


def canonical_query(query: str) -> str:
    """Parameters sorted by name then value, each URI-encoded."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(canonical header block, signed header list)``: names lower-cased and sorted,
    values trimmed with inner runs of spaces folded to one."""
    folded = {
        name.lower(): " ".join(str(value).split())
        for name, value in headers.items()
        if name.lower() not in UNSIGNED_HEADERS
    }
    names = sorted(folded)
    block = "".join(f"{name}:{folded[name]}\n" for name in names)
    return block, ";".join(names)


def canonical_request(
    method: str, url: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """``(canonical request, signed header list)`` for a request to ``url``."""
    parts = urlsplit(url)
    header_block, signed = canonical_headers(headers)
    lines = [
        method.upper(),
        canonical_uri(parts.path),
        canonical_query(parts.query),
        header_block,
        signed,
        payload_hash,
    ]
    return "\n".join(lines), signed


def credential_scope(date: str, region: str, service: str) -> str:
    """``YYYYMMDD/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    """The algorithm, the time, the scope and the hash of the canonical request."""
    return "\n".join([ALGORITHM, amz_date, scope, _sha256_hex(request.encode("utf-8"))])


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """The key derived from the secret for one day, region and service."""
    key = _hmac(f"AWS4{secret_access_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime | None = None,
    content_sha256_header: bool = True,
) -> dict[str, str]:
    """``headers`` plus ``host``, ``x-amz-date``, ``x-amz-content-sha256`` (unless turned
    off), ``x-amz-security-token`` with a session token, and ``Authorization``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    payload_hash = _sha256_hex(body)

    signed = {name.lower(): value for name, value in headers.items()}
    signed["host"] = host_header(url)
    signed["x-amz-date"] = amz_date
    if content_sha256_header:
        signed["x-amz-content-sha256"] = payload_hash
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token

    request, signed_names = canonical_request(method, url, signed, payload_hash)
    scope = credential_scope(amz_date[:8], region, service)
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(
        key, string_to_sign(amz_date, scope, request).encode(), hashlib.sha256
    ).hexdigest()

    signed["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed
