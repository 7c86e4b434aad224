"""Named loggers and the structured log format.

Each area logs under ``vaultgate.<area>``. Structured fields travel in ``extra={"fields":
{...}}`` and come out as keys of the JSON line. Secrets, prompts and completions are never
passed to a logger.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("vaultgate.access")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record, its structured fields and any exception as JSON."""
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines with the structured fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record followed by its structured fields."""
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send every ``vaultgate`` log line to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("vaultgate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def access_log_enabled() -> bool:
    """Whether the access line would be written (so callers skip building its fields)."""
    return ACCESS.isEnabledFor(logging.INFO)


def log_access(fields: dict[str, Any]) -> None:
    """Write the one INFO line that summarises a finished request."""
    ACCESS.info("request", extra={"fields": fields})
