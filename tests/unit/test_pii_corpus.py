"""The masker against 300 shapes people really type (tests/data/pii_corpus.tsv).

Each line names the raw values that must not survive and the kinds the masker must report;
lines with no values must come back unchanged (dates, sizes, prices, product codes). The
corpus was written from the shapes in issue 10 and the field report, not from the masker's
own patterns: phones in full-width digits, with every kind of dash, dot, space and bracket,
+86 in both widths, two numbers run together; 15- and 18-digit IDs after letters or grouped;
bank cards with double spaces; e-mails with a full-width ＠; WeChat, QQ and landlines after
their cue words.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlp.pii import Pii

PII = Pii(b"unit-test-key-0123456789")
CORPUS = Path(__file__).parents[1] / "data" / "pii_corpus.tsv"
FULL = str.maketrans("０１２３４５６７８９", "0123456789")


def cases() -> list[tuple[str, list[str], list[str]]]:
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        text, raws, kinds = line.split("\t")
        out.append(
            (text.replace("\\t", "\t"), [r for r in raws.split("|") if r], [] if kinds == "-" else kinds.split(","))
        )
    return out


def test_the_corpus_is_big_enough() -> None:
    assert len(cases()) >= 150
    assert sum(1 for _t, raws, _k in cases() if not raws) >= 20


@pytest.mark.parametrize(("text", "raws", "kinds"), cases())
def test_no_personal_value_survives_and_nothing_else_is_touched(text: str, raws: list[str], kinds: list[str]) -> None:
    masked, found = PII.scan(text)
    if not raws:
        assert masked == text and found == []
        return
    digits = re.sub(r"\D", "", masked.translate(FULL))
    for raw in raws:
        if raw.isdigit():
            assert raw not in digits, (text, masked)
        else:
            assert raw not in masked, (text, masked)
    assert sorted({f.kind for f in found}) == sorted(set(kinds)), (text, masked, found)
    for f in found:  # spans point at the masked values
        assert "*" in masked[f.start : f.end], (text, masked, f)
