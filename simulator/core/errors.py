"""Bad input as one typed error: where it is, what is wrong, and the status it calls for.

Modelled on h11's ``ProtocolError(msg, error_status_hint)``: every validator of request,
WebSocket or config input raises ``InputError``; each handler builds its answer (a JSON body, a
WebSocket ``error`` message, a one-line exit) from the fields, never by parsing the text.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError


class InputError(ValueError):
    """Input refused at ``where`` (a JSON path, query parameter or setting; ``""`` when the
    caller knows the place better). A ``ValueError``, so a pydantic validator may raise it and
    the place survives into pydantic's own error."""

    def __init__(self, where: str, message: str, status: int = 400) -> None:
        super().__init__(where, message, status)
        self.where = where
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def under(self, prefix: str) -> InputError:
        """The same error, its place inside ``prefix`` (``start`` in ``body``: ``body.start``)."""
        return InputError(join(prefix, self.where), self.message, self.status)


def join(prefix: str, where: str) -> str:
    """A path inside ``prefix``: ``body`` + ``to`` is ``body.to``, + ``[0]`` is ``body[0]``."""
    if not prefix or not where:
        return prefix or where
    return prefix + where if where.startswith("[") else f"{prefix}.{where}"


def from_validation(
    exc: ValidationError,
    prefix: str,
    names: Mapping[str, str] | None = None,
    *,
    inner: bool = False,
) -> InputError:
    """pydantic's first error as an ``InputError`` at ``prefix.path``, fields renamed by
    ``names`` (a query parameter's public name). With ``inner``, the place an ``InputError``
    raised by a validator names goes on the path (``media`` + ``[0].kind``); without, it stays
    at the head of the message, where the API's answers have always had it."""
    error = exc.errors()[0]
    path = prefix
    for part in error["loc"]:
        part = (names or {}).get(str(part), part)
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    cause = (error.get("ctx") or {}).get("error")
    if inner and isinstance(cause, InputError):
        return InputError(join(path, cause.where), cause.message, cause.status)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message += f", got {shown(error['input'])}"
    return InputError(path, message)


def shown(value: object, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: a 10 KB input must not become a 10 KB error."""
    return shorten(repr(value), limit)


def shorten(text: str, limit: int) -> str:
    """``text`` as one printable line of at most ``limit`` characters (control characters
    escaped as in a Python literal, the rest cut at ``…``)."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
