"""Claude on Vertex AI, on the fake in ``tests/support/fake_vertex_anthropic.py`` (a static
token); the request is read back as Anthropic's, whose body it is."""

from __future__ import annotations

from dataclasses import replace

import anthropic

from tests.providers.conformance.protocol import Sent, Target
from tests.providers.conformance.targets.anthropic import TARGET as ANTHROPIC
from tests.providers.conformance.targets.anthropic import _sdk_request, read_sent
from tests.support.fake_vertex import LOCATION, PROJECT
from tests.support.fake_vertex_anthropic import VERTEX_VERSION, FakeVertexAnthropic
from vaultgate.providers.base import Provider, ProviderConfig
from vaultgate.providers.http import HttpClient
from vaultgate.providers.vertex_anthropic import VertexAnthropicAdapter

TOKEN = "ya29.claude-conformance-token"


class VertexAnthropicTarget(Target[FakeVertexAnthropic]):
    """The ``vertex-anthropic`` wire format: Anthropic's translation behind Vertex's paths
    and auth. Vertex's quota errors carry no ``retry-after``."""

    name = "vertex-anthropic"
    facts = replace(ANTHROPIC.facts, retry_after=None)

    def start(self) -> FakeVertexAnthropic:
        """The fake Vertex server with Claude's methods, accepting the static token."""
        server = FakeVertexAnthropic()
        server.static_tokens.add(TOKEN)
        return server.start()

    def config(self, server: FakeVertexAnthropic) -> ProviderConfig:
        """The provider at the fake's root URL, the token as the credential variable's value."""
        options = (("project", PROJECT), ("location", LOCATION), ("auth", "access_token"))
        return ProviderConfig(
            name="vertex-anthropic", wire_format="vertex-anthropic",
            base_url=server.base_url, api_key=TOKEN, options=options,
        )  # fmt: skip

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Claude-on-Vertex adapter."""
        return VertexAnthropicAdapter(config, http)

    def received(self, server: FakeVertexAnthropic, upstream: str) -> Sent:
        """The request made to ``publishers/anthropic/models/{upstream}``."""
        recorded = server.claude_received(upstream)
        assert recorded.headers["authorization"] == f"Bearer {TOKEN}"
        assert recorded.body["anthropic_version"] == VERTEX_VERSION
        assert "model" not in recorded.body
        return read_sent(recorded.body)

    def sdk_status(
        self, server: FakeVertexAnthropic, scenario: str, *, stream: bool
    ) -> int | None:
        """``AnthropicVertex``: ``messages.create``, or ``messages.stream`` rebuilt."""
        request = _sdk_request(scenario)
        del request["model"]
        model = f"{scenario}~sdk-{'stream' if stream else 'whole'}"
        extra = {"anthropic_version": VERTEX_VERSION}
        with anthropic.AnthropicVertex(
            region=LOCATION, project_id=PROJECT, access_token=TOKEN,
            base_url=f"{server.base_url}/v1", max_retries=0,
        ) as client:  # fmt: skip
            try:
                if stream:
                    with client.messages.stream(
                        model=model, extra_body=extra, **request
                    ) as events:
                        message = events.get_final_message()
                else:
                    message = client.messages.create(model=model, extra_body=extra, **request)
            except anthropic.APIStatusError as error:
                return error.status_code
        assert message.stop_reason is not None
        return None


TARGET = VertexAnthropicTarget()
