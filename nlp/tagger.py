"""Associate notes -> typed, normalised, weighted tags with character spans.

``NoteTagger`` owns its jieba tokenizer (never jieba's global one) loaded once with the
shipped retail lexicon, so the worker pays the dictionary load at start-up, not on the
first note. Rules are deliberately simple and inspectable:

- a clause (split at punctuation and at 但/不过) is the scope of a cue: after 喜欢 a
  colour/category/style is a ``preference``, after 不喜欢/不要 a ``dislike``, after 推荐 a
  category is ``recommended``, after 搭配/配 a ``pairing``; otherwise colours and categories
  are plain ``colour``/``category`` tags;
- a negation (不, 没有, ...) at most two tokens before a fit adjective, quality problem,
  family word or occasion cancels it (腰不紧 is no fit problem);
- fit = optional body part (up to three tokens back) + adjective: 腰 + 有点紧 -> 腰偏紧;
- a quality problem is a ``return_reason`` when the note speaks of a return or exchange;
- sizes come from a pattern (M码, XL, 38码, 均码), not from the dictionary.

Synonyms map to one canonical value through the lexicon (有点紧 / 偏紧 / 紧了 -> 偏紧).
Traditional characters are converted to simplified (OpenCC, length-preserving, else left
as they are) and full-width ASCII folded, so spans always index the original text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import jieba
import opencc

KINDS = {
    "colour",
    "category",
    "style",
    "quality",
    "occasion",
    "family",
    "pairing",
    "part",
    "adj",
    "cue_like",
    "cue_dislike",
    "cue_recommend",
    "cue_pair",
    "cue_return",
    "neg",
}
TAG_TYPES = (
    "size",
    "colour",
    "category",
    "fit",
    "quality",
    "return_reason",
    "occasion",
    "family",
    "recommended",
    "pairing",
    "preference",
    "dislike",
)
CLAUSE_BREAK = set("，。！？；,.!?;\n\r～~：:（）()【】[]")
CONTRAST = {"但", "但是", "不过", "可是", "然而", "就是"}
OK_WORDS = {"合适", "刚好", "正好", "可以", "还行", "没问题", "正常", "ok", "OK", "挺好", "不错"}
ADJ_CHARS = {"长": "长", "短": "短", "宽": "宽", "窄": "窄", "紧": "紧", "松": "松"}
BARE_ADJ_OK = {"紧", "松"}  # single-character adjectives that mean fit even without a body part
ACTION_BEFORE = {
    "换",
    "换了",
    "拿",
    "要",
    "改",
    "修",
    "剪",
    "建议拿",
    "换成",
}  # 换大一码 / 改裙长: an action, not a fit
SIZE_RE = re.compile(
    r"(?:(?<![A-Za-z&])|(?<=size))(XXXL|XXL|[2-5]XL|XL|XS|S|M|L)(?![A-Za-z])(?:码|号)?"
    r"|(?<!\d)(2[2-9]|3\d|4[0-6])(?:码|号)"
    r"|(均码|加大码|大码)",
    re.IGNORECASE,
)
SIZE_CANON = {"2XL": "XXL", "3XL": "XXXL", "加大码": "大码"}
MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class Tag:
    type: str
    value: str
    start: int
    end: int
    surface: str
    weight: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.type}:{self.value}"


def _fold_width(text: str) -> str:
    """Full-width ASCII -> ASCII, one character for one, so spans stay valid."""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else (" " if c == "\u3000" else c) for c in text)


def load_lexicon(text: str | None = None) -> dict[str, tuple[str, str]]:
    """surface -> (kind, canonical); lines are ``surface<TAB>kind<TAB>canonical``."""
    if text is None:
        text = resources.files("nlp").joinpath("data/retail_lexicon.tsv").read_text(encoding="utf-8")
    out: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in KINDS:
            raise ValueError(f"lexicon line {n}: expected surface<TAB>kind<TAB>canonical, got {line!r}")
        surface, kind = parts[0].strip(), parts[1].strip()
        canon = parts[2].strip() if len(parts) > 2 and parts[2].strip() else surface
        out[surface.lower()] = (kind, canon)
    return out


class NoteTagger:
    """Build once per process (about a second: jieba's dictionary plus ours), then ``tag``."""

    def __init__(self, lexicon: dict[str, tuple[str, str]] | None = None, idf: dict[str, float] | None = None) -> None:
        self.lexicon = load_lexicon() if lexicon is None else lexicon
        self.idf = load_idf() if idf is None else idf
        self.default_idf = max(self.idf.values(), default=1.0)
        self._tok = jieba.Tokenizer()
        self._tok.initialize()
        for surface in sorted(self.lexicon, key=len):
            if len(surface) > 1:
                self._tok.add_word(surface, freq=self._tok.suggest_freq(surface, tune=False) + 10_000)
        self._t2s = opencc.OpenCC("t2s")

    def normalise(self, text: str) -> str:
        folded = _fold_width(text)
        simple = str(self._t2s.convert(folded))
        return simple if len(simple) == len(folded) else folded

    def tokens(self, text: str) -> list[tuple[str, int, int]]:
        return [(w, s, e) for w, s, e in self._tok.tokenize(text, HMM=False) if w.strip()]

    def tag(self, text: str, masked: Sequence[Sequence[int]] = ()) -> list[Tag]:
        """Tags of one note, each with its span in ``text``, weighted by TF-IDF (L2 = 1).

        ``masked`` are the spans the PII masker replaced (s***@qq.com, 138****5678): no tag
        may come from inside one, whatever its letters look like."""
        if len(text) > MAX_NOTE_CHARS:
            raise ValueError(f"note of {len(text)} characters exceeds {MAX_NOTE_CHARS}")
        norm = self.normalise(text)
        toks = self.tokens(norm)
        tags: list[Tag] = []
        returning = any(
            self._kind(w)[0] == "cue_return" and not self._negated(toks, i) for i, (w, _s, _e) in enumerate(toks)
        )
        for clause in self._clauses(toks):
            tags.extend(self._clause_tags(clause, text, returning))
        tags.extend(self._sizes(norm, text))
        if masked:
            tags = [t for t in tags if not any(t.start < e and s < t.end for s, e in masked)]
        return self._weigh(_dedupe(tags))

    def _clauses(self, toks: list[tuple[str, int, int]]) -> Iterable[list[tuple[str, int, int]]]:
        cur: list[tuple[str, int, int]] = []
        for t in toks:
            if t[0] in CLAUSE_BREAK or all(c in CLAUSE_BREAK for c in t[0]) or t[0] in CONTRAST:
                if cur:
                    yield cur
                cur = []
                continue
            cur.append(t)
        if cur:
            yield cur

    def _kind(self, word: str) -> tuple[str, str]:
        return self.lexicon.get(word.lower(), ("", ""))

    def _negated(self, clause: list[tuple[str, int, int]], i: int) -> bool:
        return any(self._kind(clause[j][0])[0] == "neg" for j in range(max(0, i - 2), i))

    def _clause_tags(self, clause: list[tuple[str, int, int]], text: str, returning: bool) -> list[Tag]:
        out: list[Tag] = []
        cues: set[str] = set()
        for i, (word, s, e) in enumerate(clause):
            kind, canon = self._kind(word)
            surface = text[s:e]

            def add(tag_type: str, value: str, start: int = s, end: int = e, surf: str = surface) -> None:
                out.append(Tag(tag_type, value, start, end, surf))

            if kind == "cue_like":
                if self._negated(clause, i):
                    cues.add("dislike")
                else:
                    cues.add("like")
            elif kind == "cue_dislike":
                cues.add("dislike")
            elif kind == "cue_recommend":
                cues.add("recommend")
            elif kind == "cue_pair":
                cues.add("pair")
            elif kind in ("colour", "category", "style"):
                if "dislike" in cues:
                    add("dislike", canon)
                elif "like" in cues:
                    add("preference", canon)
                elif kind == "category" and "recommend" in cues:
                    add("recommended", canon)
                elif kind == "category" and "pair" in cues:
                    add("pairing", canon)
                elif kind != "style":
                    add(kind, canon)
            elif kind == "pairing":
                add("pairing", canon)
            elif kind in ("quality", "occasion", "family"):
                if self._negated(clause, i):
                    continue
                if kind == "quality":
                    add("return_reason" if returning else "quality", canon)
                else:
                    add(kind, canon)
            elif kind == "adj":
                if self._negated(clause, i) or (i > 0 and clause[i - 1][0] in ACTION_BEFORE):
                    continue
                part = next(
                    (j for j in range(i - 1, max(-1, i - 4), -1) if self._kind(clause[j][0])[0] == "part"), None
                )
                if part is not None:
                    pw, ps, _pe = clause[part]
                    add("fit", f"{self._kind(pw)[1]}偏{canon}", ps, e, text[ps:e])
                elif len(word) > 1 or canon in BARE_ADJ_OK:
                    add("fit", f"偏{canon}")
            elif (
                kind == "part"
                and word[-1] in ADJ_CHARS
                and len(word) > 1
                and not (i > 0 and clause[i - 1][0] in ACTION_BEFORE)
            ):
                # 袖长 / 肩宽 on their own mean "too long / too wide"; 袖长合适 does not.
                rest = [self._kind(w)[0] for w, _s, _e in clause[i + 1 :]]
                if "adj" not in rest and not any(w in OK_WORDS for w, _s, _e in clause[i + 1 :]):
                    add("fit", f"{canon}偏{ADJ_CHARS[word[-1]]}")
        return out

    def _sizes(self, norm: str, text: str) -> list[Tag]:
        out = []
        for m in SIZE_RE.finditer(norm):
            raw = (m.group(1) or m.group(2) or m.group(3)).upper()
            out.append(Tag("size", SIZE_CANON.get(raw, raw), m.start(), m.end(), text[m.start() : m.end()]))
        return out

    def _weigh(self, tags: list[Tag]) -> list[Tag]:
        counts: dict[str, int] = {}
        for t in tags:
            counts[t.key] = counts.get(t.key, 0) + 1
        raw = {k: n * self.idf.get(k, self.default_idf) for k, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in raw.values())) or 1.0
        return [replace(t, weight=round(raw[t.key] / norm, 4)) for t in tags]


def _dedupe(tags: list[Tag]) -> list[Tag]:
    """One tag per (key, span); a span claimed by a longer tag of the same type wins."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for t in sorted(tags, key=lambda t: (t.start, -(t.end - t.start))):
        if (t.key, t.start, t.end) in seen:
            continue
        seen.add((t.key, t.start, t.end))
        out.append(t)
    return out


def load_idf(text: str | None = None) -> dict[str, float]:
    if text is None:
        path = resources.files("nlp").joinpath("data/tag_idf.json")
        if not path.is_file():
            return {}
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    return {str(k): float(v) for k, v in data["idf"].items()}


def fit_idf(tagger: NoteTagger, notes: Iterable[str]) -> dict[str, Any]:
    """Smoothed IDF of every tag key over a notes corpus (scikit-learn's TF-IDF definition)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [[t.key for t in tagger.tag(n)] for n in notes]
    vec = TfidfVectorizer(analyzer=lambda d: d, smooth_idf=True)
    vec.fit(docs)
    idf = {k: round(float(vec.idf_[i]), 4) for k, i in sorted(vec.vocabulary_.items())}
    return {"documents": len(docs), "idf": idf}
