"""``multipart/form-data`` bodies of plain text fields (RFC 7578), for upstream APIs that
take forms rather than JSON."""

from __future__ import annotations

import secrets
from collections.abc import Mapping


def encode_form(fields: Mapping[str, str]) -> tuple[bytes, str]:
    """The body for ``fields`` and its ``Content-Type`` (which carries the boundary).

    Field names are the adapter's own, never the client's; the boundary is 128 random bits,
    so no value can contain it by chance.
    """
    boundary = f"vaultgate-{secrets.token_hex(16)}"
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
