"""Personal-data masking (PIPL Art. 28/51): nothing raw leaves the worker.

Values that must still be matched (a phone number used to find a member) are kept as a
keyed HMAC; the key comes from the environment, so a leaked table cannot be reversed by
hashing all 10^10 mobile numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_ID18 = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(\d{3})([0-9Xx])(?![0-9A-Za-z])"
)
_CARD = re.compile(r"(?<!\d)(\d(?:[ -]?\d){15,18})(?!\d)")
# The look-behind makes a match start only at the beginning of a run of local-part
# characters: without it a long run with no "@" (64 KB of padding) costs O(n^2).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]{1,255}\.[A-Za-z]{2,24}")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum_ok(id18: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of a mainland resident ID number."""
    if len(id18) != 18 or not id18[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(id18[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == id18[17].upper()


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


def mask_phone(phone: str) -> str:
    """138****5678: enough for staff to recognise, useless to call."""
    digits = re.sub(r"\D", "", phone)[-11:]
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) == 11 else "***"


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[-11:]


class Pii:
    """Masks free text and makes lookup tokens; one instance per process, built from settings."""

    def __init__(self, hmac_key: bytes) -> None:
        if len(hmac_key) < 16:
            raise ValueError("PII HMAC key must be at least 16 bytes")
        self._key = hmac_key

    def token(self, kind: str, value: str) -> str:
        """Keyed, stable lookup token; ``kind`` separates namespaces (phone vs. id)."""
        mac = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def phone_token(self, phone: str) -> str:
        return self.token("phone", normalise_phone(phone))

    def mask_text(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """Return masked text and (kind, token) pairs for each value found."""
        found: list[tuple[str, str]] = []

        def _id(m: re.Match[str]) -> str:
            value = m.group(0)
            if not id_checksum_ok(value):
                return value
            found.append(("id", self.token("id", value.upper())))
            return value[:3] + "*" * 11 + value[-4:]

        def _mobile(m: re.Match[str]) -> str:
            digits = m.group(1) + m.group(2) + m.group(3)
            found.append(("phone", self.token("phone", digits)))
            return f"{m.group(1)}****{m.group(3)}"

        def _card(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group(1))
            if not (16 <= len(digits) <= 19 and luhn_ok(digits)):
                return m.group(0)
            found.append(("card", self.token("card", digits)))
            return f"{digits[:4]} **** **** {digits[-4:]}"

        def _email(m: re.Match[str]) -> str:
            value = m.group(0)
            found.append(("email", self.token("email", value.lower())))
            local, _, domain = value.partition("@")
            return f"{local[:1]}***@{domain}"

        text = _ID18.sub(_id, text)
        text = _CARD.sub(_card, text)
        text = _MOBILE.sub(_mobile, text)
        text = _EMAIL.sub(_email, text)
        return text, found
