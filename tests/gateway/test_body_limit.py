"""Request bodies over VAULTGATE_MAX_BODY_BYTES are refused with 413, whether the client
declares the length or streams the body chunked."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.conftest import Gateway, start_gateway
from tests.gateway.helpers import assert_openai_error, sqlite_url
from tests.support.fake_openai import FakeOpenAI

LIMIT = 4096


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    """A gateway that accepts bodies of at most LIMIT bytes."""
    tmp_path = tmp_path_factory.mktemp("small-body")
    running = start_gateway(
        tmp_path,
        sqlite_url(tmp_path),
        fake_upstream.base_url,
        extra_env={"VAULTGATE_MAX_BODY_BYTES": str(LIMIT)},
    )
    yield running
    running.server.stop()


def _body(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    message = {"role": "user", "content": ""}
    template = {"model": "offline-small-text", "messages": [message]}
    message["content"] = "x" * (size - len(orjson.dumps(template)))
    body = orjson.dumps(template)
    assert len(body) == size
    return body


def _chunked(body: bytes, piece: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


def _post(gateway: Gateway, content: bytes | Iterator[bytes]) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {gateway.key}", "content-type": "application/json"},
        timeout=10,
    )


@pytest.mark.parametrize("size", [LIMIT + 1, 4 * LIMIT])
def test_body_limit_declared_length_over_limit_is_413(small: Gateway, size: int) -> None:
    error = assert_openai_error(_post(small, _body(size)), 413)

    assert error["code"] == "request_too_large"
    assert str(LIMIT) in error["message"]


@pytest.mark.parametrize("size", [LIMIT + 1, 4 * LIMIT])
def test_body_limit_chunked_over_limit_is_413(small: Gateway, size: int) -> None:
    error = assert_openai_error(_post(small, _chunked(_body(size))), 413)

    assert error["code"] == "request_too_large"


def test_body_limit_at_limit_is_accepted(small: Gateway) -> None:
    assert _post(small, _body(LIMIT)).status_code == 200
    assert _post(small, _chunked(_body(LIMIT))).status_code == 200


def test_body_limit_server_stays_healthy_after_refusals(small: Gateway) -> None:
    for _ in range(3):
        assert_openai_error(_post(small, _chunked(_body(8 * LIMIT))), 413)

    assert httpx.get(small.base_url + "/readyz", timeout=10).status_code == 200
    assert "unhandled error" not in small.server.logs()
