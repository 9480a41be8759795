"""Agency credits: the ``[AP]`` or ``(AFP)`` a live blog puts on copy it took from a wire service.

The credit says who the words came from, so it belongs in ``Post.source`` rather than the body.
Only known agencies count: a trailing ``[ISIL]`` or ``(DGST)`` is part of the text, not a credit.
"""

from __future__ import annotations

import re

_AGENCIES: dict[str, str] = {
    "ap": "AP",
    "associated press": "AP",
    "the associated press": "AP",
    "reuters": "Reuters",
    "thomson reuters": "Reuters",
    "afp": "AFP",
    "agence france-presse": "AFP",
    "agence france presse": "AFP",
    "al jazeera": "Al Jazeera",
    "al jazeera english": "Al Jazeera",
    "aje": "Al Jazeera",
    "epa": "EPA",
    "getty": "Getty Images",
    "getty images": "Getty Images",
    "afp/getty": "AFP/Getty Images",
    "afp/getty images": "AFP/Getty Images",
    "dpa": "DPA",
    "xinhua": "Xinhua",
    "anadolu": "Anadolu",
    "anadolu agency": "Anadolu",
    "upi": "UPI",
    "pa": "PA",
    "press association": "PA",
    "bloomberg": "Bloomberg",
    "kyodo": "Kyodo",
    "yonhap": "Yonhap",
    "tass": "TASS",
    "itar-tass": "TASS",
    "irna": "IRNA",
    "sana": "SANA",
    "kuna": "KUNA",
    "ansa": "ANSA",
}

_SPACE = " \t\r\n\u00a0\u202f\u2007\u200b"
_TRAILING = re.compile(r"(?:\[([^\[\]\n]{1,40})\]|\(([^()\n]{1,40})\))[" + _SPACE + r"]*\Z")
_LEADING = re.compile(r"\A[" + _SPACE + r"]*\[([^\[\]\n]{1,40})\][ \t\u00a0]*\n")


def normalise_source(name: str) -> str:
    """The house name for an agency however it was written; unknown names are only tidied."""
    cleaned = _tidy(name)
    return _AGENCIES.get(cleaned.lower(), cleaned)


def is_agency(name: str) -> bool:
    """Whether ``name`` is a wire service we recognise, however it was written."""
    return _tidy(name).lower() in _AGENCIES


def _tidy(name: str) -> str:
    return " ".join(name.strip(_SPACE + "[]()").split())


def split_credit(text: str) -> tuple[str, str | None]:
    """The text without its agency credit, and the normalised agency (``None`` when uncredited).

    A credit is a bracketed agency at the very end of the text (``... said. [AFP]``, or on a line of
    its own), or a square-bracketed agency alone on the first line (``[AP]`` heading a wire story).
    Unchanged text comes back when there is no credit.
    """
    trailing = _TRAILING.search(text)
    if trailing:
        name = trailing.group(1) or trailing.group(2)
        if is_agency(name):
            return text[: trailing.start()].rstrip(_SPACE), normalise_source(name)
    leading = _LEADING.match(text)
    if leading and is_agency(leading.group(1)):
        return text[leading.end() :].lstrip(_SPACE), normalise_source(leading.group(1))
    return text, None
