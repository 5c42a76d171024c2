"""`salespulse notes` and `salespulse reco`: tagger and co-purchase upkeep."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.infra import store
from pipeline.infra.settings import Settings


def cmd_reco(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.tagger import load_lexicon
    from pipeline.notes.recommend import mine_from_store

    client = store.connect(settings)
    try:
        doc = mine_from_store(client, load_lexicon(), settings.model_dir)
    finally:
        client.close()
    print(f"{len(doc['rules'])} co-purchase rules from {doc['baskets']} baskets -> {settings.model_dir}")
    for r in doc["rules"][: args.top]:
        print(
            f"  {r['if']} -> {r['then']}: support {r['support']:.3f}, "
            f"confidence {r['confidence']:.0%}, lift {r['lift']}"
        )
    print("restart the worker to use them")
    return 0


def cmd_notes(settings: Settings, args: argparse.Namespace) -> int:
    """`notes fit-idf`: refit the tag IDF on the stored notes (or on the shipped recipe);
    `notes candidates`: words the stored notes use that the lexicon does not know;
    `notes check-lexicon`: validate an edited lexicon before a running worker picks it up."""
    from nlp.tagger import NoteTagger, fit_idf

    if args.action == "check-lexicon":
        return check_lexicon(settings, args)
    if args.action == "candidates":
        return show_candidates(settings, args)

    if args.simulated:  # how nlp/data/tag_idf.json is made: simulator notes + the labelled notes
        import orjson

        from nlp.evaluate import load_labelled
        from pipeline.simulate import generate

        at = datetime(2026, 11, 20, tzinfo=UTC)
        texts = [
            orjson.loads(v)["payload"]["text"]
            for t, _k, v, _ts in generate(1, days=30, now=at, customers=300, bad_rate=0)
            if t == "store.notes"
        ]
        data = Path(__file__).resolve().parents[1] / "tests" / "data"
        texts += [t for f in ("notes_dev.tsv", "notes_holdout.tsv") for t, _ in load_labelled(data / f)]
        source = "salespulse simulate (seed 1, 30 days) notes + tests/data labelled notes"
    else:
        client = store.connect(settings)
        try:
            rows = client.query(
                "SELECT JSONExtractString(payload, 'text') FROM events FINAL WHERE event_type = 'store.note'"
            )
        finally:
            client.close()
        texts = [r[0] for r in rows.result_rows]
        source = f"{len(texts)} stored notes"
    if not texts:
        print("no notes to fit on", file=sys.stderr)
        return 1
    doc = fit_idf(NoteTagger(idf={}), texts)
    doc["fitted_on"] = source
    out = Path(args.out) if args.out else settings.model_dir / "tag_idf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"IDF of {len(doc['idf'])} tags from {doc['documents']} notes -> {out}; restart the worker to use it")
    return 0


def stored_notes(settings: Settings) -> list[str]:
    """The stored notes as stored: masked before they reached ClickHouse."""
    client = store.connect(settings)
    try:
        rows = client.query("SELECT text FROM note_tags FINAL")
    finally:
        client.close()
    return [r[0] for r in rows.result_rows]


def show_candidates(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.tagger import NoteTagger, candidates

    texts = stored_notes(settings)
    found = candidates(NoteTagger(), texts, limit=args.limit, min_count=args.min_count)
    if not found:
        print(f"no unknown word in at least {args.min_count} of {len(texts)} stored notes")
        return 0
    print(f"words in the stored notes ({len(texts)}) the lexicon does not know, most frequent first:")
    for word, count, example in found:
        print(f"  {word}\t{count} notes\t…{example}…")
    print("add a line `word<TAB>kind<TAB>canonical` to the lexicon, then `salespulse notes check-lexicon`")
    return 0


def check_lexicon(settings: Settings, args: argparse.Namespace) -> int:
    from collections import Counter

    from nlp.tagger import load_lexicon

    path = Path(args.file) if args.file else settings.model_dir / "retail_lexicon.tsv"
    try:
        lexicon = load_lexicon(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 2
    kinds = Counter(kind for kind, _canon in lexicon.values())
    print(f"{path}: {len(lexicon)} entries, valid ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
    print(f"a running worker picks up {settings.model_dir / 'retail_lexicon.tsv'} within 10 seconds")
    return 0
