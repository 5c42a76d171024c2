"""Precision and recall of the tagger against labelled notes, per tag type and overall.

A tag counts as found when its ``type:value`` is among the note's expected tags (spans are
not labelled: an annotator writes what the note says, not where).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nlp.tagger import NoteTagger


@dataclass
class Scores:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[str, set[str], set[str]]] = field(default_factory=list)
    notes: int = 0

    def precision(self, t: str | None = None) -> float:
        tp = sum(self.tp.values()) if t is None else self.tp[t]
        fp = sum(self.fp.values()) if t is None else self.fp[t]
        return tp / (tp + fp) if tp + fp else 1.0

    def recall(self, t: str | None = None) -> float:
        tp = sum(self.tp.values()) if t is None else self.tp[t]
        fn = sum(self.fn.values()) if t is None else self.fn[t]
        return tp / (tp + fn) if tp + fn else 1.0

    def types(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))


def load_labelled(path: Path) -> list[tuple[str, set[str]]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, _, tags = line.partition("\t")
        if not _:
            raise ValueError(f"{path}:{n}: expected text<TAB>tags")
        expected = set() if tags.strip() == "-" else set(tags.split())
        bad = [t for t in expected if ":" not in t]
        if bad:
            raise ValueError(f"{path}:{n}: tags must be type:value, got {bad}")
        out.append((text, expected))
    return out


def load_reviews(path: Path) -> list[tuple[str, set[str]]]:
    """Real reviews labelled by hand: ``id<TAB>text<TAB>tags`` (the id names the corpus line)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            out.append(review_row(line))
        except ValueError:
            raise ValueError(f"{path}:{n}: expected id<TAB>text<TAB>tags") from None
    return out


def review_row(line: str) -> tuple[str, set[str]]:
    """One labelled review line: its text and expected tags ("-" = none)."""
    _rid, text, tags = line.split("\t")
    return text, set() if tags.strip() == "-" else set(tags.split())


def evaluate(tagger: NoteTagger, items: Iterable[tuple[str, set[str]]]) -> Scores:
    s = Scores()
    for text, expected in items:
        s.notes += 1
        found = {t.key for t in tagger.tag(text)}
        for key in found & expected:
            s.tp[key.split(":", 1)[0]] += 1
        for key in found - expected:
            s.fp[key.split(":", 1)[0]] += 1
        for key in expected - found:
            s.fn[key.split(":", 1)[0]] += 1
        if found != expected:
            s.misses.append((text, found - expected, expected - found))
    return s


def table(s: Scores) -> str:
    rows = ["| tag type | expected | found | correct | precision | recall |", "|---|---:|---:|---:|---:|---:|"]
    for t in s.types():
        counts = f"{s.tp[t] + s.fn[t]} | {s.tp[t] + s.fp[t]} | {s.tp[t]}"
        rows.append(f"| {t} | {counts} | {s.precision(t):.3f} | {s.recall(t):.3f} |")
    tp, fp, fn = sum(s.tp.values()), sum(s.fp.values()), sum(s.fn.values())
    rows.append(f"| **overall** | {tp + fn} | {tp + fp} | {tp} | {s.precision():.3f} | {s.recall():.3f} |")
    return "\n".join(rows)
