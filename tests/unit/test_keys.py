"""API keys and the rate limiter: what the API's security rests on, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.api.app import RateLimiter
from pipeline.api.keys import KeyStore


def test_keys_are_stored_hashed_scoped_and_revocable(tmp_path: Path) -> None:
    ks = KeyStore(tmp_path / "keys.json")
    token, rec = ks.create("上海店长", "store_manager", stores=["S-SH-001"])
    stored = (tmp_path / "keys.json").read_text(encoding="utf-8")
    assert token.startswith("sp_") and token not in stored and rec.sha256 in stored
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0  # not readable by others
    p = ks.authenticate(token)
    assert p is not None and p.role == "store_manager" and p.stores == ("S-SH-001",) and p.name == "上海店长"
    assert ks.authenticate(token + "x") is None and ks.authenticate("") is None
    other = KeyStore(tmp_path / "keys.json")  # another process (serve) sees the change
    assert other.authenticate(token) is not None
    assert ks.revoke(rec.key_id)
    assert other.authenticate(token) is None  # the file changed: re-read, revoked
    assert not ks.revoke("nope")


def test_scoped_roles_need_their_scope(tmp_path: Path) -> None:
    ks = KeyStore(tmp_path / "keys.json")
    for role, kw in (("store_manager", {}), ("sales_rep", {}), ("cs", {}), ("root", {})):
        with pytest.raises(ValueError):
            ks.create("x", role, **kw)
    assert ks.list() == []


def test_rate_limiter_allows_bursts_then_refills() -> None:
    import time

    rl = RateLimiter(rate=0.0, burst=5.0)
    assert all(rl.allow("k") for _ in range(5))
    assert not rl.allow("k")
    assert rl.allow("other")  # per key
    refill = RateLimiter(rate=50.0, burst=1.0)
    assert refill.allow("k") and not refill.allow("k")
    time.sleep(0.05)  # 50/s: one token back after 20 ms
    assert refill.allow("k")


def test_a_store_manager_key_needs_real_store_codes(tmp_path: Path) -> None:
    """`--store ""` was accepted and that key read nearly every customer (issue 10)."""
    ks = KeyStore(tmp_path / "keys.json")
    for bad in ([""], [" "], ["S-SH-001", ""], ["S SH 001"]):
        with pytest.raises(ValueError, match="store"):
            ks.create("x", "store_manager", stores=bad)
    assert ks.list() == []
    ks.create("ok", "store_manager", stores=["S-SH-001"])
    assert [r.stores for r in ks.list()] == [["S-SH-001"]]


def test_a_pairing_code_gives_one_tablet_its_own_revocable_key_once_within_ten_minutes(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from pipeline.api.keys import Pairings

    ks = KeyStore(tmp_path / "keys.json")
    book = Pairings(ks)
    t0 = datetime(2026, 11, 30, 2, tzinfo=UTC)
    code, expires = book.offer("上海店长", "store_manager", stores=["S-SH-001"], by="管理员", now=t0)
    assert len(code) == 9 and code[4] == "-" and expires == t0 + timedelta(minutes=10)
    assert code.replace("-", "") not in (tmp_path / "keys.pairings.json").read_text(encoding="utf-8")  # hashed
    assert book.claim("AAAA-AAAA", "前台平板", now=t0) is None
    got = book.claim(code.lower().replace("-", " "), "前台平板", now=t0 + timedelta(minutes=9))  # typed loosely
    assert got is not None
    token, rec = got
    p = ks.authenticate(token)
    assert p is not None and p.role == "store_manager" and p.stores == ("S-SH-001",) and rec.device == "前台平板"
    assert book.claim(code, "另一台", now=t0 + timedelta(minutes=9)) is None  # once
    late, _ = book.offer("店员", "store_manager", stores=["S-SH-001"], now=t0)
    assert book.claim(late, "平板", now=t0 + timedelta(minutes=10, seconds=1)) is None  # expired
    assert ks.revoke(rec.key_id) and ks.authenticate(token) is None
    with pytest.raises(ValueError, match="needs --store"):
        book.offer("店长", "store_manager", now=t0)
