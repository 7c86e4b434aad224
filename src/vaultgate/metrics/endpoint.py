"""``GET /metrics`` and who may read it.

With a metrics token configured, a scrape must carry ``Authorization: Bearer <token>``.
Without one, only clients connected straight from a loopback address may scrape: a request
that a proxy forwarded (it carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``) is
refused even when the proxy itself connects from loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from vaultgate.errors import AuthenticationFailed, Forbidden
from vaultgate.metrics.exposition import CONTENT_TYPE

PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback IP address (IPv4-mapped IPv6 included)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_direct_local_client(request: Request) -> bool:
    """Whether the request came from a loopback address and through no proxy."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    return is_loopback(request.client.host if request.client else None)


def _presented_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def check_scrape_access(request: Request, token: str | None) -> None:
    """Raise 401 without the configured token, 403 for a remote client when there is none."""
    if token:
        if not hmac.compare_digest(_presented_token(request).encode(), token.encode()):
            raise AuthenticationFailed(
                "GET /metrics needs the metrics token: Authorization: Bearer <token>.",
                code="invalid_metrics_token",
                headers={"www-authenticate": "Bearer"},
            )
        return
    if not is_direct_local_client(request):
        raise Forbidden(
            "Metrics are served only to local clients; set VAULTGATE_METRICS_TOKEN to allow "
            "scrapes from elsewhere."
        )


def metrics_endpoint(
    render: Callable[[], str], token: str | None
) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /metrics`` handler over ``render``, guarded by ``token``."""

    async def serve_metrics(request: Request) -> Response:
        check_scrape_access(request, token)
        return Response(render(), media_type=CONTENT_TYPE)

    return serve_metrics
