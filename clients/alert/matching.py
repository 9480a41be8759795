"""Whether a post matches a rule: keywords, pattern, source, type, and numbers in the text."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rules import Rule


class CompiledRule:
    """A rule with its expressions built once."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = rule.name
        words = "|".join(re.escape(k) for k in rule.keywords)
        self.keywords = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.I) if words else None
        self.pattern = re.compile(rule.pattern, re.I) if rule.pattern else None
        self.sources = {s.casefold() for s in rule.source}
        self.types = frozenset(rule.types)

    def match(self, post: dict[str, Any], type: str) -> dict[str, Any] | None:
        """What matched (for the alert), or None."""
        if type not in self.types:
            return None
        rule = self.rule
        matched: dict[str, Any] = {}
        if self.sources:
            source = post.get("source")
            if not isinstance(source, str) or source.casefold() not in self.sources:
                return None
            matched["source"] = source
        text = "\n\n".join(
            value for f in rule.fields if isinstance(value := post.get(f), str) and value
        )
        if self.keywords is not None:
            found = sorted({m.group(0).lower() for m in self.keywords.finditer(text)})
            if not found:
                return None
            matched["keywords"] = found
        if self.pattern is not None:
            hit = self.pattern.search(text)
            if hit is None:
                return None
            matched["pattern"] = hit.group(0)[:200]
        if rule.number is not None:
            number = rule.number
            values = number_near(text, number.phrase, number.within)
            good = [
                v
                for v in values
                if (number.at_least is None or v >= number.at_least)
                and (number.at_most is None or v <= number.at_most)
            ]
            if not good:
                return None
            matched["number"] = good[0]
        return matched


_WORD_NUMBERS = {
    w: n
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[A-Za-z][A-Za-z'-]*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def number_near(text: str, phrases: Iterable[str], within: int = 6) -> list[float]:
    """The numbers a phrase is about, one per occurrence of the phrase.

    How a number is associated with a phrase: in the same sentence, the nearest number
    *before* the phrase with at most ``within`` words between them; if there is none, the
    nearest number *after* it within ``within`` words. A number is digits (``1,075``, ``26``,
    ``2.5``) or a word up to twenty and the tens (``three``, ``sixty``), optionally followed by
    a scale word (``two thousand`` = 2000, ``1.2 million``). So "at least 1,075 people have
    been killed" gives 1075 for ``killed``; "757 civilians were killed and 599 injured" gives
    757; "air strikes killed at least 26 people" gives 26.

    Linear in the text: each occurrence finds its neighbours by bisection in the sentence's
    numbers, which are in order and do not overlap.
    """
    wanted = [p.lower().split() for p in phrases if p.split()]
    out: list[float] = []
    for sentence in _SENTENCE.split(text):
        tokens = [t.lower() for t in _TOKEN.findall(sentence)]
        numbers = _numbers(tokens)
        starts = [start for start, _, _ in numbers]
        ends = [end for _, end, _ in numbers]
        for phrase in wanted:
            size = len(phrase)
            first = phrase[0]
            for at in range(len(tokens) - size + 1):
                if tokens[at] != first or tokens[at : at + size] != phrase:
                    continue
                before = bisect_right(ends, at) - 1  # the last number ending at or before it
                if before >= 0 and at - ends[before] <= within:
                    out.append(numbers[before][2])
                    continue
                after = bisect_left(starts, at + size)  # the first number after it
                if after < len(numbers) and starts[after] - at - size <= within:
                    out.append(numbers[after][2])
    return out


def _numbers(tokens: list[str]) -> list[tuple[int, int, float]]:
    """``(first token, token after the last, value)`` for every number in ``tokens``."""
    found: list[tuple[int, int, float]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value: float | None = None
        if token[0].isdigit():
            value = float(token.replace(",", ""))
        elif token in _WORD_NUMBERS:
            value = float(_WORD_NUMBERS[token])
        if value is None:
            i += 1
            continue
        end = i + 1
        while end < len(tokens) and tokens[end] in _SCALES:
            value *= _SCALES[tokens[end]]
            end += 1
        found.append((i, end, value))
        i = end
    return found
