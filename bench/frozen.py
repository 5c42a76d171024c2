"""Each held-out draw of real reviews scored by the tagger it was drawn on, rebuilt from git.

A draw is held out only until the rules are tuned on it; after that it joins the dev set. The
honest figure for it is the one measured while it was held out, so the bench rebuilds that
tagger (`git archive <commit> nlp`) and scores the draw with it in a separate process, instead
of quoting a number from a commit message. The draws and their commits are the
``# seed N ... frozen=<commit>`` headers in ``tests/data/reviews_dev.tsv``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from nlp.evaluate import Scores, review_row

ROOT = Path(__file__).resolve().parent.parent
REVIEWS = ROOT / "tests" / "data" / "reviews_dev.tsv"
HEADER = re.compile(r"^# seed (\d+) .*frozen=([0-9a-f]{7,40})")

# Runs inside the rebuilt tree: only NoteTagger and Tag.type/.value, which every version has.
SCORE = """
import json, sys
from collections import Counter
from nlp.tagger import NoteTagger
rows = json.load(open(sys.argv[1], encoding="utf-8"))
tagger = NoteTagger()
tp, fp, fn = Counter(), Counter(), Counter()
for text, expected in rows:
    found = {f"{t.type}:{t.value}" for t in tagger.tag(text)}
    expected = set(expected)
    for k in found & expected: tp[k.split(":", 1)[0]] += 1
    for k in found - expected: fp[k.split(":", 1)[0]] += 1
    for k in expected - found: fn[k.split(":", 1)[0]] += 1
print(json.dumps({"tp": tp, "fp": fp, "fn": fn}))
"""


@dataclass
class Draw:
    seed: int
    commit: str
    rows: list[tuple[str, set[str]]]


def draws(path: Path = REVIEWS) -> list[Draw]:
    """The held-out draws that name the commit they were frozen on, in file order."""
    out: list[Draw] = []
    cur: Draw | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            m = HEADER.match(line)
            if m:
                cur = Draw(int(m.group(1)), m.group(2), [])
                out.append(cur)
            else:
                cur = None  # another draw's header: its rows are not a frozen draw's
            continue
        if cur is not None and line.strip():
            cur.rows.append(review_row(line))
    return out


def scored_then(draw: Draw) -> Scores:
    """The draw scored by the tagger of its commit (needs the repository's git history)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", draw.commit, "nlp"], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        rows = Path(tmp) / "rows.json"
        rows.write_text(json.dumps([(t, sorted(e)) for t, e in draw.rows], ensure_ascii=False), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": tmp}
        res = subprocess.run(
            [sys.executable, "-c", SCORE, str(rows)], env=env, cwd=tmp, capture_output=True, text=True, check=True
        )
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    return Scores(tp=Counter(counts["tp"]), fp=Counter(counts["fp"]), fn=Counter(counts["fn"]), notes=len(draw.rows))


if __name__ == "__main__":
    for d in draws():
        s = scored_then(d)
        print(f"seed {d.seed} ({len(d.rows)} reviews, frozen={d.commit}): P={s.precision():.3f} R={s.recall():.3f}")
