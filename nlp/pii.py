"""Personal-data masking (PIPL Art. 28/51): nothing raw leaves the worker.

Values that must still be matched (a phone number used to find a member) are kept as a
keyed HMAC; the key comes from the environment, so a leaked table cannot be reversed by
hashing all 10^10 mobile numbers.

What people really type, not what a form would hold: full-width digits from Chinese IMEs,
numbers grouped with spaces, hyphens, dashes, dots or brackets, "+86" prefixes, two numbers
run together, IDs right after letters ("sfz..."), WeChat and QQ ids after their cue words,
landlines after 座机/电话, e-mails with a full-width ＠. The text is NFKC-folded character by
character (an offset map leads back to the original), digit runs are read with their
separators in one linear pass, and each run of seven digits or more is masked, whatever it
turns out to be: over-masking a product code costs less than leaking a number. Dates
(2026-11-29) are the one shape let through.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_SEP = r"[ \t\-\u2010-\u2015\u2212.·・_/()\[\]]"  # between digits of one number (after NFKC)
_RUN = re.compile(r"(?:\+\s?)?\d(?:" + _SEP + r"{1,3}\d|\d)*")
_DATE = re.compile(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_RANGE = re.compile(r"[1-9]\d{0,4}\s?[-~\u2013\u2014]\s?[1-9]\d{0,4}")
# The look-behind makes a match start only at the beginning of a run of local-part
# characters: without it a long run with no "@" (64 KB of padding) costs O(n^2).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}\s?(?:@|\(at\)|\[at\])\s?[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,5}\.[A-Za-z]{2,24}"
)
_CUE = r"\s?(?:号码|号|账号|id|ID)?\s?[:：是为\s]?\s?"
_WECHAT_WORDS = r"(?:微信|威信|薇信|V信|v信|vx|VX|Vx|wx|WX|Wx|weixin|wechat|WeChat)"
_LANDLINE_WORDS = r"(?:座机|电话|固话|tel|TEL|Tel|分机|传真)"
_WECHAT = re.compile(_WECHAT_WORDS + _CUE + r"([A-Za-z][A-Za-z0-9_\-]{4,19})")
_QQ = re.compile(r"(?:QQ|qq|Qq|扣扣|企鹅)" + _CUE + r"([1-9]\d{4,11})")
_LANDLINE = re.compile(_LANDLINE_WORDS + _CUE + r"((?:\+\s?)?\d(?:" + _SEP + r"{1,3}\d|\d){4,})")
# Worth a full scan: a run of seven digits with at most three other characters between any two
# of them (a superset of what ``_RUN`` reads as one number, before or after NFKC: folding
# never shortens a gap), an @ in either width, or a cue word (QQ numbers and landlines can be
# shorter, and are only caught after one). One C-level regex search and a few substring
# tests, as most strings (and most whole payloads) hold none of them. Characters NFKC turns
# into digits (①, ⑴, ¹, full width) count as digits.
_DIGITISH = (
    r"\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089\u2460-\u249b\u24ea-\u24ff\u2776-\u2793"
    r"\u3251-\u325f\u32b1-\u32bf"
)
_RUN7 = re.compile(f"[{_DIGITISH}](?:[^{_DIGITISH}]{{0,3}}[{_DIGITISH}]){{6}}")
_AT_CUES = ("@", "＠", "(at)", "[at]", "（at）")
_WECHAT_CUES = ("微信", "威信", "薇信", "v信", "vx", "wx", "weixin", "wechat", "ｖ信", "ｖｘ", "ｗｘ")
_QQ_CUES = ("qq", "扣扣", "企鹅", "ｑｑ")
_LANDLINE_CUES = ("座机", "电话", "固话", "tel", "分机", "传真", "ｔｅｌ")
_CUES = (*_AT_CUES, *_WECHAT_CUES, *_QQ_CUES, *_LANDLINE_CUES)
_ANY_CUE = re.compile("|".join(map(re.escape, _CUES)))  # one C-level pass, 3-6x a loop of `in` tests
MIN_DIGITS = 7
# The digit counts ``_classify`` can find personal: a mobile (11; 13 and 15 with 86 or 0086),
# two mobiles run together (22), an ID (15, 18 with its check character), a card (16-19).
_PERSONAL_LENGTHS = frozenset({11, 13, 15, 16, 17, 18, 19, 22})

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum_ok(id18: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of a mainland resident ID number."""
    if len(id18) != 18 or not id18[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(id18[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == id18[17].upper()


def _id_shaped(digits: str) -> bool:
    """Area code, then a birth date: 18 characters (19xx/20xx, check X allowed) or a
    first-generation 15 (yy)."""
    if len(digits) == 18 and digits[:17].isdigit():
        year, month, day = digits[6:10], digits[10:12], digits[12:14]
        if year[:2] not in ("19", "20"):
            return False
    elif len(digits) == 15 and digits.isdigit():
        month, day = digits[8:10], digits[10:12]
    else:
        return False
    return digits[0] != "0" and "01" <= month <= "12" and "01" <= day <= "31"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒".split()
    + "夏侯 轩辕 令狐 钟离 端木 独孤 南宫 西门 万俟 呼延".split()
)
TITLE = {"F": "女士", "M": "先生"}


def mask_name(name: str, gender: str | None = None) -> str:
    """王女士 / 欧阳先生 / 王*: the surname and a courtesy title, as staff greet a customer;
    the given name never leaves intake. A name in Latin letters keeps its first letter."""
    name = re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))
    if not name:
        return ""
    if not ("\u4e00" <= name[0] <= "\u9fff"):
        return name[0].upper() + "***"
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    return surname + TITLE.get(gender or "", "*")


def mask_phone(phone: str) -> str:
    """138****5678: enough for staff to recognise, useless to call."""
    digits = normalise_phone(phone)
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) == 11 else "***"


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    return digits[-11:]


def fold(text: str) -> tuple[str, list[int] | None]:
    """NFKC, character by character, with each folded character's index in ``text`` (None
    when nothing changed): full-width digits, ＠ and ＋, ideographic and no-break spaces."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text, None
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        f = unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7F else ch
        out.append(f)
        where.extend([i] * len(f))
    return "".join(out), where


@dataclass(frozen=True)
class Found:
    """One personal value: its kind, keyed token and span in the masked text."""

    kind: str  # phone, id, card, email, wechat, qq, number
    token: str
    start: int
    end: int


class Pii:
    """Masks free text and makes lookup tokens; one instance per process, built from settings."""

    def __init__(self, hmac_key: bytes) -> None:
        if len(hmac_key) < 16:
            raise ValueError("PII HMAC key must be at least 16 bytes")
        self._key = hmac_key
        self._ids: dict[str, str] = {}  # identifier -> what is stored (ids repeat: cache them)

    def token(self, kind: str, value: str) -> str:
        """Keyed, stable lookup token; ``kind`` separates namespaces (phone vs. id)."""
        mac = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def phone_token(self, phone: str) -> str:
        return self.token("phone", normalise_phone(phone))

    def identifier(self, value: str) -> str:
        """An identifier (customer, member, order, event id) as stored: unchanged, unless it
        holds a personal value (a phone, ID, card, e-mail, WeChat or QQ id), which turns the
        whole identifier into a keyed token: the same input always gives the same token, so
        keys still join and replays still dedupe, and nothing of the number is left. A long
        number alone (an order number) is not personal in an identifier."""
        known = self._ids.get(value)
        if known is not None:
            return known
        if value.isascii() and _ANY_CUE.search(value.lower()) is None:
            personal = self._personal_run(value)  # most ids: no fold, no cue patterns, no tokens
        else:
            personal = any(f.kind != "number" for f in self.scan(value)[1])
        out = f"pii.{self.token('identifier', value)[:16]}" if personal else value
        if len(self._ids) > 200_000:
            self._ids.clear()
        self._ids[value] = out
        return out

    @staticmethod
    def _personal_run(text: str) -> bool:
        """A digit run in ASCII text without cue words that ``scan`` would mask as a phone, ID
        or card (the same runs, the same classification; only "number" is not personal)."""
        if _RUN7.search(text) is None:
            return False
        return any(
            len(digits) in _PERSONAL_LENGTHS and _classify(digits, run)[0] != "number"
            for _s, _e, run, digits in _numbers(text)
        )

    def mask_text(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """Return masked text and (kind, token) pairs for each value found."""
        masked, found = self.scan(text)
        return masked, [(f.kind, f.token) for f in found]

    def might_hold(self, text: str) -> bool:
        """False when ``text`` cannot hold anything ``scan`` masks (one regex pass): a whole
        payload is checked once, and only payloads that might are scanned field by field."""
        if _RUN7.search(text) is not None:
            return True
        return _ANY_CUE.search(text.lower()) is not None

    def scan(self, text: str) -> tuple[str, list[Found]]:
        """Masked text and what was found, with spans in the masked text (so a tagger can keep
        out of them). Linear in the input: each pattern is a single left-to-right pass."""
        if not self.might_hold(text):
            return text, []
        norm, where = fold(text)
        hits: list[tuple[int, int, str, str, str]] = []  # (start, end, kind, token, replacement) in norm
        taken = bytearray(len(norm))

        def claim(s: int, e: int, kind: str, value: str, repl: str) -> None:
            if any(taken[s:e]):
                return
            taken[s:e] = b"\x01" * (e - s)
            hits.append((s, e, kind, self.token(kind, value), repl))

        low = norm.lower()  # each family of patterns runs only where its cue is present
        if any(c in low for c in _AT_CUES):
            for m in _EMAIL.finditer(norm):
                local, _, domain = re.split(r"\s?(@|\(at\)|\[at\])\s?", m.group(0), maxsplit=1)
                claim(m.start(), m.end(), "email", f"{local}@{domain}".lower(), f"{local[:1]}***@{domain}")
        for pattern, kind, cues in ((_WECHAT, "wechat", _WECHAT_CUES), (_QQ, "qq", _QQ_CUES)):
            if not any(c in low for c in cues):
                continue
            for m in pattern.finditer(norm):
                value = m.group(1)
                claim(m.start(1), m.end(1), kind, value, value[:1] + "***")
        for m in _LANDLINE.finditer(norm) if any(c in low for c in _LANDLINE_CUES) else ():
            digits = re.sub(r"\D", "", m.group(1))
            if not _MOBILE.fullmatch(digits[-11:]) or len(digits) < 11:
                claim(m.start(1), m.end(1), "number", digits, _stars(m.group(1)))
        for start, end, run, digits in _numbers(norm):
            if taken[start]:  # a run that starts inside a WeChat or QQ id (wx_abc123 13812345678):
                while start < end and taken[start]:  # the rest of it is still judged
                    start += 1
                run = norm[start:end].lstrip(" -")
                start, digits = end - len(run), re.sub(r"\D", "", run)
                if len(digits) < 7:
                    continue
            kind, value, repl = _classify(digits, run)
            claim(start, end, kind, value, repl)
        if not hits:
            return text, []
        return _rebuild(text, where, sorted(hits))


def _numbers(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, run, digits) of every run of seven digits or more that is not a date or a
    small range; an ID's check letter X after seventeen digits belongs to the run."""
    for m in _RUN.finditer(text):
        run, end = m.group(0), m.end()
        digits = re.sub(r"\D", "", run)
        if len(digits) == 17 and end < len(text) and text[end] in "Xx":
            run, end, digits = run + text[end], end + 1, digits + "X"
        if len(digits) >= MIN_DIGITS and not _harmless(run):
            yield m.start(), end, run, digits


def _harmless(run: str) -> bool:
    """A date (with at most a time after it) or a range of two small numbers (5000-8000)."""
    date = _DATE.match(run)
    if date is not None and sum(c.isdigit() for c in run[date.end() :]) <= 4:
        return True
    return _RANGE.fullmatch(run) is not None


def _classify(digits: str, run: str) -> tuple[str, str, str]:
    """A digit run of seven or more -> (kind, value for the token, what the text shows)."""
    core = digits
    if core.startswith("0086") and len(core) == 15:
        core = core[4:]
    elif core.startswith("86") and len(core) == 13:
        core = core[2:]
    if _MOBILE.fullmatch(core):
        return "phone", core, f"{core[:3]}****{core[-4:]}"
    if len(core) == 22 and _MOBILE.fullmatch(core[:11]) and _MOBILE.fullmatch(core[11:]):
        return "phone", f"{core[:11]},{core[11:]}", f"{core[:3]}****{core[7:11]} {core[11:14]}****{core[-4:]}"
    if _id_shaped(core) or id_checksum_ok(core):
        return "id", core.upper(), core[:3] + "*" * (len(core) - 7) + core[-4:]
    if 16 <= len(core) <= 19 and core.isdigit() and luhn_ok(core):
        return "card", core, f"{core[:4]} **** **** {core[-4:]}"
    return "number", core, _stars(run)


def _stars(run: str) -> str:
    """Every digit but the last two hidden; separators kept so the shape stays readable."""
    total = sum(c.isdigit() for c in run)
    out, seen = [], 0
    for c in run:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - 2 else "*")
        else:
            out.append(c)
    return "".join(out)


def _rebuild(text: str, where: list[int] | None, hits: list[tuple[int, int, str, str, str]]) -> tuple[str, list[Found]]:
    """Replace the hits (spans in the folded text) in the original text."""
    out: list[str] = []
    found: list[Found] = []
    pos = 0
    length = 0
    for s, e, kind, token, repl in hits:
        os_, oe = (s, e) if where is None else (where[s], where[e - 1] + 1)
        if os_ < pos:
            continue
        out.append(text[pos:os_])
        length += os_ - pos
        out.append(repl)
        found.append(Found(kind, token, length, length + len(repl)))
        length += len(repl)
        pos = oe
    out.append(text[pos:])
    return "".join(out), found
