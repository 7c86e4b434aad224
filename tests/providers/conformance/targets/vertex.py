"""The Vertex AI adapter, on the fake in ``tests/support/fake_vertex.py`` (a static token)."""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.oauth2 import credentials as oauth2_credentials

from tests.providers.conformance.protocol import Sent
from tests.providers.conformance.targets.gemini import GeminiTarget, _sdk_contents, read_sent
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_vertex import LOCATION, PROJECT, FakeVertex
from vaultgate.providers.base import Provider, ProviderConfig
from vaultgate.providers.http import HttpClient
from vaultgate.providers.vertex import VertexAdapter

TOKEN = "ya29.vertex-conformance-token"


class VertexTarget(GeminiTarget):
    """The ``vertex`` wire format: Gemini's translation behind Vertex's paths and auth."""

    name = "vertex"

    def start(self) -> FakeVertex:
        """The fake Vertex server, accepting the static token."""
        server = FakeVertex()
        server.static_tokens.add(TOKEN)
        return server.start()

    def config(self, server: FakeGemini) -> ProviderConfig:
        """The provider at the fake's root URL, with the fake's project and location."""
        # The token as the credential variable's value, read as a token (not a key file).
        options = (("project", PROJECT), ("location", LOCATION), ("auth", "access_token"))
        return ProviderConfig(
            name="vertex", wire_format="vertex", base_url=server.base_url, api_key=TOKEN,
            options=options,
        )  # fmt: skip

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Vertex adapter."""
        return VertexAdapter(config, http)

    def received(self, server: FakeGemini, upstream: str) -> Sent:
        """The request made to ``publishers/google/models/{upstream}``."""
        recorded = server.received(upstream)
        assert recorded.headers["Authorization"] == f"Bearer {TOKEN}"
        return read_sent(recorded.body, stream=recorded.method == "streamGenerateContent")

    def sdk_status(self, server: FakeGemini, scenario: str, *, stream: bool) -> int | None:
        """``generate_content``, or every event of ``generate_content_stream``, in Vertex mode."""
        options = genai_types.HttpOptions(base_url=server.base_url, api_version="v1")
        creds = oauth2_credentials.Credentials(token=TOKEN)  # type: ignore[no-untyped-call]
        request: dict[str, Any] = {
            "model": f"{scenario}~sdk-{'stream' if stream else 'whole'}",
            "contents": _sdk_contents(scenario),
            "config": genai_types.GenerateContentConfig(stop_sequences=["END"]),
        }
        client = genai.Client(
            vertexai=True, project=PROJECT, location=LOCATION, credentials=creds,
            http_options=options,
        )  # fmt: skip
        with client:
            try:
                if stream:
                    assert list(client.models.generate_content_stream(**request))
                else:
                    client.models.generate_content(**request)
            except genai_errors.APIError as error:
                return error.code
        return None


TARGET = VertexTarget()
