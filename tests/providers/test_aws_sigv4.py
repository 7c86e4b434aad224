"""SigV4 signing: AWS's published test-suite vectors, and botocore's own signer on the same
Bedrock requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from vaultgate.providers.aws_sigv4 import (
    AwsCredentials,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    host_header,
    sign_request,
    signing_key,
)

# The credentials, date, region and service of AWS's SigV4 test suite (aws-sig-v4-test-suite).
SUITE_CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

NOW = datetime(2026, 12, 4, 9, 30, 15, tzinfo=UTC)
BEDROCK_URL = "https://bedrock-runtime.us-east-1.amazonaws.com"
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'


@pytest.mark.parametrize(
    ("method", "signature"),
    [
        ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ],
)
def test_sign_request_aws_suite_vanilla_vectors_match_published_signature(
    method: str, signature: str
) -> None:
    headers = sign_request(
        method, "https://example.amazonaws.com/", {}, body=b"", credentials=SUITE_CREDENTIALS,
        region="us-east-1", service="service", now=SUITE_TIME, content_sha256_header=False,
    )  # fmt: skip

    assert headers["authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders=host;x-amz-date, "
        f"Signature={signature}"
    )
    assert headers["x-amz-date"] == "20150830T123600Z"
    assert headers["host"] == "example.amazonaws.com"


def test_signing_key_aws_documented_example_derives_published_key() -> None:
    # The worked example of AWS's "deriving a signing key" documentation.
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")

    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def _botocore_authorization(
    monkeypatch: pytest.MonkeyPatch, url: str, headers: dict[str, str], token: str | None
) -> str:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=BODY, headers=headers)
    credentials = Credentials("AKIDTEST", "secret/with+chars", token)
    botocore_auth.SigV4Auth(credentials, "bedrock", "us-east-1").add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    "path",
    [
        "/model/amazon.nova-micro-v1%3A0/converse",
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
        "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
        "/model/plain/converse",
    ],
)
@pytest.mark.parametrize("token", [None, "session/token+value=="])
@pytest.mark.parametrize("content_sha256", [False, True])
def test_sign_request_bedrock_request_matches_botocore_signer(
    monkeypatch: pytest.MonkeyPatch, path: str, token: str | None, content_sha256: bool
) -> None:
    url = BEDROCK_URL + path
    headers = {"Content-Type": "application/json"}
    if content_sha256:
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(BODY).hexdigest()
    credentials = AwsCredentials("AKIDTEST", "secret/with+chars", token)

    ours = sign_request(
        "POST", url, {"Content-Type": "application/json"}, body=BODY, credentials=credentials,
        region="us-east-1", service="bedrock", now=NOW, content_sha256_header=content_sha256,
    )  # fmt: skip

    assert ours["authorization"] == _botocore_authorization(monkeypatch, url, headers, token)
    assert ("x-amz-security-token" in ours) is (token is not None)


def test_sign_request_adds_date_content_hash_and_token_headers() -> None:
    credentials = AwsCredentials("AKIDTEST", "secret", "the-token")

    headers = sign_request(
        "POST", BEDROCK_URL + "/model/plain/converse", {"content-type": "application/json"},
        body=BODY, credentials=credentials, region="eu-west-3", service="bedrock", now=NOW,
    )  # fmt: skip

    assert headers["x-amz-date"] == "20261204T093015Z"
    assert headers["x-amz-content-sha256"] == hashlib.sha256(BODY).hexdigest()
    assert headers["x-amz-security-token"] == "the-token"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261204/eu-west-3/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-security-token, Signature="
    )


def test_canonical_request_path_is_encoded_again_and_headers_folded() -> None:
    request, signed = canonical_request(
        "post",
        "https://h.example/model/a%3Ab%2Fc/converse?b=2&a=x%20y&a=1",
        {"Host": "h.example", "X-Amz-Date": " 20261204T093015Z ", "X-Note": "a   b\tc"},
        "e3b0",
    )

    assert request.split("\n") == [
        "POST",
        "/model/a%253Ab%252Fc/converse",
        "a=1&a=x%20y&b=2",
        "host:h.example",
        "x-amz-date:20261204T093015Z",
        "x-note:a b c",
        "",
        "host;x-amz-date;x-note",
        "e3b0",
    ]
    assert signed == "host;x-amz-date;x-note"


def test_canonical_headers_user_agent_and_authorization_unsigned() -> None:
    block, signed = canonical_headers(
        {"User-Agent": "x", "Authorization": "y", "X-Amzn-Trace-Id": "z", "Host": "h"}
    )

    assert (block, signed) == ("host:h\n", "host")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://bedrock-runtime.us-east-1.amazonaws.com/x",
         "bedrock-runtime.us-east-1.amazonaws.com"),
        ("https://h.example:443/x", "h.example"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("http://[::1]:9000/x", "[::1]:9000"),
    ],
)  # fmt: skip
def test_host_header_default_port_omitted(url: str, host: str) -> None:
    assert host_header(url) == host


def test_canonical_uri_and_query_empty_parts() -> None:
    assert canonical_uri("") == "/"
    assert canonical_query("") == ""


def test_credentials_repr_hides_secret_and_token() -> None:
    credentials = AwsCredentials("AKIDTEST", "very-secret-value", "very-secret-token")

    assert "very-secret" not in repr(credentials)
    assert "AKIDTEST" in repr(credentials)
