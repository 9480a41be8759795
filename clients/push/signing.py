"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

The secret is ``whsec_`` and the base64 of the key; each message carries ``webhook-id``,
``webhook-timestamp`` (integer seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, so a receiver can check it came from us and is not a replay.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
"""The spec asks for 24 to 64 random bytes."""
MAX_KEY_BYTES = 64


class SecretError(ValueError):
    """A secret not in the spec's ``whsec_<base64>`` form; the text never quotes the secret."""


def parse_secret(text: str, where: str) -> bytes:
    text = text.strip()
    if not text.startswith(PREFIX):
        raise SecretError(f"{where}: expected a secret of the form whsec_<base64>")
    try:
        key = base64.b64decode(text.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{where}: the part after whsec_ is not base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SecretError(
            f"{where}: the key is {len(key)} bytes, expected {MIN_KEY_BYTES} to {MAX_KEY_BYTES}"
        )
    return key


def headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
