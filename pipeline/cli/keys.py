"""`salespulse keys`: API keys for the console and the API."""

from __future__ import annotations

import argparse
import sys

from pipeline.infra.settings import Settings


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.api.keys import KeyStore

    ks = KeyStore(settings.keys_file)
    if args.action == "create":
        known = None
        if args.store:
            from kafka.errors import KafkaError

            from pipeline.infra.kafka_admin import known_stores

            try:
                known = known_stores(settings)
            except KafkaError as exc:
                print(f"refused: cannot check the store ids against the running system ({exc})", file=sys.stderr)
                return 2
        try:
            token, rec = ks.create(
                args.name,
                args.role,
                stores=args.store,
                rep_id=args.rep or "",
                specialist_id=args.specialist or "",
                known_stores=known,
                region=args.region or "",
            )
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        print(f"key {rec.key_id} for {rec.name} ({rec.role}); shown once, only its hash is kept:")
        print(token)
        return 0
    if args.action == "revoke":
        if not args.key_id or not ks.revoke(args.key_id):
            print(f"no key {args.key_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0
    for r in ks.list():
        scope = ",".join(r.stores) or r.rep_id or r.specialist_id or r.region or "-"
        print(f"{r.key_id}  {r.role:13} {scope:20} {'revoked' if r.revoked else 'active':8} {r.created_at}  {r.name}")
    return 0


def demo_keys(settings: Settings) -> str:
    """Keys to look around the console with after the demo (stored hashed like any other)."""
    from pipeline.api.keys import KeyStore

    ks = KeyStore(settings.keys_file)
    admin, _ = ks.create("演示管理员", "admin")
    manager, _ = ks.create("上海店长（演示）", "store_manager", stores=["S-SH-001"])
    rep, _ = ks.create("R-004 销售代表（演示）", "sales_rep", rep_id="R-004")
    east, _ = ks.create("华东销售经理（演示）", "sales_manager", region="华东")
    finance, _ = ks.create("财务（演示）", "finance")
    return (
        "console: `make up` (Kafka, worker, serve), then open "
        f"http://{settings.api_host}:{settings.api_port}/ and log in with\n"
        f"  admin:                   {admin}\n"
        f"  store manager S-SH-001:  {manager}\n"
        f"  sales rep R-004:         {rep}\n"
        f"  sales manager 华东:      {east}\n"
        f"  finance:                 {finance}"
    )
