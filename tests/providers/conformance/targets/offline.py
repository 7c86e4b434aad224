"""The built-in offline provider: no server and no upstream request, so only the cases
about the answer's shape apply."""

from __future__ import annotations

from tests.providers.conformance.protocol import Facts, Sent, Target
from vaultgate.providers.base import Provider, ProviderConfig
from vaultgate.providers.http import HttpClient
from vaultgate.providers.offline import OfflineProvider

NO_UPSTREAM = "the offline provider sends no request anywhere"
NO_SCENARIOS = "the offline provider has one behaviour, whatever the model name"
NO_SDK = "the offline provider has no SDK of its own"


class NoServer:
    """Nothing to start or stop."""

    def stop(self) -> None:
        """Nothing to stop."""


class OfflineTarget(Target[NoServer]):
    """The ``offline`` format."""

    name = "offline"
    # Its reply depends on the conversation, its usage on the reply.
    facts = Facts(reply=None, usage=None)
    not_applicable = {
        case: NO_UPSTREAM
        for case in (
            "system-messages", "same-role-turns", "image-data-url", "image-http-url",
            "tool-choice", "tool-results", "stop-sequences", "max-tokens", "json-output",
        )
    } | {
        case: NO_SCENARIOS
        for case in (
            "tool-calls", "content-filter", "usage-details", "upstream-errors",
            "stream-error",
        )
    } | {"sdk": NO_SDK}  # fmt: skip

    def start(self) -> NoServer:
        """Nothing to start."""
        return NoServer()

    def config(self, server: NoServer) -> ProviderConfig:
        """The offline provider's configuration."""
        return ProviderConfig(name="offline", wire_format="offline")

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The provider, without its human-like pacing."""
        return OfflineProvider(config, token_delay_s=0, first_token_delay_s=0)

    def received(self, server: NoServer, upstream: str) -> Sent:
        """Never called: every case reading the request is not applicable."""
        raise AssertionError(NO_UPSTREAM)

    def sdk_status(self, server: NoServer, scenario: str, *, stream: bool) -> int | None:
        """Never called: there is no provider SDK."""
        raise AssertionError(NO_SDK)


TARGET = OfflineTarget()
