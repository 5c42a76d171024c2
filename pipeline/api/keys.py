"""API keys: created by `salespulse keys create`, stored hashed, scoped by role.

Only the SHA-256 of a key is stored (keys are 32 random bytes, so a slow hash adds
nothing). The file is re-read when it changes, so keys created or revoked while `serve`
runs take effect at once, in the embedded setup and in production alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

Role = Literal["admin", "ops", "store_manager", "sales_rep", "sales_manager", "cs", "finance"]
ROLES: tuple[str, ...] = ("admin", "ops", "store_manager", "sales_rep", "sales_manager", "cs", "finance")
ROLE_ZH = {
    "admin": "管理员",
    "ops": "运维",
    "store_manager": "店长",
    "sales_rep": "销售代表",
    "sales_manager": "销售经理",
    "cs": "客户成功专员",
    "finance": "财务",
}


STORE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")


@dataclass(frozen=True)
class Principal:
    """Who is asking and what they may see; built from the key, never from the request."""

    key_id: str
    name: str
    role: str
    stores: tuple[str, ...] = ()
    rep_id: str = ""
    specialist_id: str = ""
    region: str = ""  # sales_manager: the sales region whose deals they see

    @property
    def reads_customers(self) -> bool:
        return self.role != "ops"


@dataclass
class KeyRecord:
    key_id: str
    name: str
    role: str
    sha256: str
    created_at: str
    stores: list[str] = field(default_factory=list)
    rep_id: str = ""
    specialist_id: str = ""
    revoked: bool = False
    region: str = ""
    device: str = ""  # a key paired to a tablet: the device's name


def write_private(path: Path, doc: dict[str, object]) -> None:
    """Replace ``path`` whole (a reader never sees half a file), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check(
    role: str,
    *,
    stores: list[str] | None = None,
    rep_id: str = "",
    specialist_id: str = "",
    known_stores: set[str] | None = None,
    region: str = "",
) -> None:
    """Refuse a key that could not read what its role needs (ValueError, in English for the CLI)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "store_manager" and not stores:
        raise ValueError("a store_manager key needs --store (one or more)")
    for store in stores or []:
        # An empty store id matched every app and messaging event (they carry none).
        if not STORE_CODE.fullmatch(store or ""):
            raise ValueError(f"store id {store!r} is not a store code such as S-SH-001")
        if known_stores is not None and store not in known_stores:
            near = ", ".join(sorted(known_stores)[:20]) or "none yet"
            raise ValueError(f"store id {store!r} is not a store this system knows (known: {near})")
    if role == "sales_rep" and not rep_id:
        raise ValueError("a sales_rep key needs --rep")
    if role == "cs" and not specialist_id:
        raise ValueError("a cs key needs --specialist")
    if role == "sales_manager" and not region:
        raise ValueError("a sales_manager key needs --region (e.g. 华东)")


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_hash: dict[str, KeyRecord] = {}

    def _load(self) -> list[KeyRecord]:
        if not self.path.exists():
            return []
        return [KeyRecord(**r) for r in json.loads(self.path.read_text(encoding="utf-8"))["keys"]]

    def _save(self, records: list[KeyRecord]) -> None:
        write_private(self.path, {"keys": [asdict(r) for r in records]})

    def create(
        self,
        name: str,
        role: str,
        *,
        stores: list[str] | None = None,
        rep_id: str = "",
        specialist_id: str = "",
        known_stores: set[str] | None = None,
        region: str = "",
        device: str = "",
    ) -> tuple[str, KeyRecord]:
        """Returns the token (shown once) and its stored record. ``known_stores``, where given
        (the CLI reads them from the running system), refuses a store id nobody has seen: a
        typo such as S-SH-01 made a key that silently read nothing."""
        check(role, stores=stores, rep_id=rep_id, specialist_id=specialist_id, known_stores=known_stores, region=region)
        token = "sp_" + secrets.token_urlsafe(32)
        rec = KeyRecord(
            key_id=secrets.token_hex(4),
            name=name,
            role=role,
            sha256=_digest(token),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            stores=sorted(stores or []),
            rep_id=rep_id,
            specialist_id=specialist_id,
            region=region,
            device=device,
        )
        with self._lock:
            self._save([*self._load(), rec])
            self._mtime = None
        return token, rec

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            records = self._load()
            hit = [r for r in records if r.key_id == key_id]
            for r in hit:
                r.revoked = True
            self._save(records)
            self._mtime = None
            return bool(hit)

    def list(self) -> list[KeyRecord]:
        return self._load()

    def authenticate(self, token: str) -> Principal | None:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                mtime = -1.0
            if mtime != self._mtime:
                self._by_hash = {r.sha256: r for r in self._load() if not r.revoked}
                self._mtime = mtime
            digest = _digest(token)
            rec = next((r for h, r in self._by_hash.items() if hmac.compare_digest(h, digest)), None)
        if rec is None:
            return None
        return Principal(rec.key_id, rec.name, rec.role, tuple(rec.stores), rec.rep_id, rec.specialist_id, rec.region)


PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen and typed
PAIRING_MINUTES = 10


def normalise_code(code: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", code.upper())


class Pairings:
    """Short-lived pairing codes: an admin offers one for a role and scope, a tablet claims it
    once and gets its own key (named after the device, revocable like any key). Only the
    codes' SHA-256 is kept, in a file beside the keys (several serve processes share it).
    A code is 8 characters of 32 (10^12), lives 10 minutes and serves once; failed claims are
    throttled per client like failed logins."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.path = keys.path.with_name(keys.path.stem + ".pairings.json")
        self._lock = threading.Lock()

    def _load(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        return list(json.loads(self.path.read_text(encoding="utf-8"))["pairings"])

    def _save(self, items: list[dict[str, object]]) -> None:
        write_private(self.path, {"pairings": items})

    def offer(
        self,
        name: str,
        role: str,
        *,
        stores: list[str] | None = None,
        rep_id: str = "",
        specialist_id: str = "",
        region: str = "",
        by: str = "",
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        """A new code (shown once, as ABCD-EFGH) and when it expires."""
        check(role, stores=stores, rep_id=rep_id, specialist_id=specialist_id, region=region)
        now = now or datetime.now(UTC)
        raw = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
        expires = now + timedelta(minutes=PAIRING_MINUTES)
        item: dict[str, object] = {
            "sha256": _digest(raw),
            "expires_at": expires.isoformat(timespec="seconds"),
            "name": name,
            "role": role,
            "stores": sorted(stores or []),
            "rep_id": rep_id,
            "specialist_id": specialist_id,
            "region": region,
            "offered_by": by,
        }
        with self._lock:
            live = [p for p in self._load() if str(p["expires_at"]) > now.isoformat(timespec="seconds")]
            self._save([*live, item])
        return raw[:4] + "-" + raw[4:], expires

    def claim(self, code: str, device: str, now: datetime | None = None) -> tuple[str, KeyRecord] | None:
        """The device's new key for a live code, once; None for a wrong, used or expired code."""
        now = now or datetime.now(UTC)
        digest = _digest(normalise_code(code))
        with self._lock:
            items = self._load()
            hit = next(
                (
                    p
                    for p in items
                    if hmac.compare_digest(str(p["sha256"]), digest)
                    and str(p["expires_at"]) > now.isoformat(timespec="seconds")
                ),
                None,
            )
            if hit is None:
                return None
            self._save([p for p in items if p is not hit])  # once: gone before the key exists
        stores = [str(s) for s in hit["stores"]] if isinstance(hit["stores"], list) else []
        return self.keys.create(
            f"{hit['name']}（{device}）",
            str(hit["role"]),
            stores=stores,
            rep_id=str(hit["rep_id"]),
            specialist_id=str(hit["specialist_id"]),
            region=str(hit["region"]),
            device=device,
        )
