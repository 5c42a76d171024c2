"""The note tagger: quality measured on labelled notes, and the behaviour store staff rely on."""

from __future__ import annotations

from pathlib import Path

import jieba
import pytest

from nlp.evaluate import evaluate, load_labelled
from nlp.tagger import MAX_NOTE_CHARS, NoteTagger

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def tagger() -> NoteTagger:
    return NoteTagger()


def keys(tagger: NoteTagger, text: str) -> set[str]:
    return {t.key for t in tagger.tag(text)}


def test_precision_and_recall_floors_on_300_labelled_notes(tagger: NoteTagger) -> None:
    dev = load_labelled(DATA / "notes_dev.tsv")
    holdout = load_labelled(DATA / "notes_holdout.tsv")
    assert len(dev) + len(holdout) >= 300 and len(holdout) >= 100
    both = evaluate(tagger, dev + holdout)
    assert both.precision() >= 0.9 and both.recall() >= 0.8, (both.precision(), both.recall())
    held = evaluate(tagger, holdout)  # never used to tune the rules
    assert held.precision() >= 0.9 and held.recall() >= 0.8, (held.precision(), held.recall())


def test_every_tag_points_back_to_its_span(tagger: NoteTagger) -> None:
    for text, _ in load_labelled(DATA / "notes_dev.tsv"):
        for t in tagger.tag(text):
            assert text[t.start : t.end] == t.surface and t.surface


def test_synonyms_normalise_to_one_tag(tagger: NoteTagger) -> None:
    for note in ("腰有点紧", "腰偏紧", "腰紧了", "腰围太紧", "腰身有些紧"):
        assert keys(tagger, note) == {"fit:腰偏紧"}, note
    assert keys(tagger, "藏蓝色卫衣") == keys(tagger, "海军蓝卫衣") == {"colour:藏青", "category:卫衣"}


def test_negation_turns_a_like_into_a_dislike_and_cancels_problems(tagger: NoteTagger) -> None:
    assert keys(tagger, "不喜欢红色") == {"dislike:红色"}
    assert keys(tagger, "喜欢红色") == {"preference:红色"}
    assert keys(tagger, "不太喜欢红色的") == {"dislike:红色"}
    assert keys(tagger, "腰不紧，不起球，没有小孩") == set()


def test_quality_problem_is_a_return_reason_only_when_returned(tagger: NoteTagger) -> None:
    assert keys(tagger, "毛衣起球了") == {"category:毛衣", "quality:起球"}
    assert keys(tagger, "毛衣起球了，来退货") == {"category:毛衣", "return_reason:起球"}
    assert keys(tagger, "毛衣起球了，但不想退") == {"category:毛衣", "quality:起球"}


def test_traditional_full_width_english_and_emoji(tagger: NoteTagger) -> None:
    assert keys(tagger, "顧客試穿Ｌ碼連衣裙，不喜歡紅色😂") == {"size:L", "category:连衣裙", "dislike:红色"}
    assert keys(tagger, "MUJI的衬衫 size xl") == {"category:衬衫", "size:XL"}  # no M from MUJI


def test_empty_long_and_oversize_notes(tagger: NoteTagger) -> None:
    assert tagger.tag("") == [] and tagger.tag("   ") == []
    long = ("顾客试穿M码阔腿裤，腰偏紧。" * 400)[:MAX_NOTE_CHARS]
    assert {t.key for t in tagger.tag(long)} == {"size:M", "category:阔腿裤", "fit:腰偏紧"}
    with pytest.raises(ValueError, match="exceeds"):
        tagger.tag("阔" * (MAX_NOTE_CHARS + 1))


def test_weights_are_tf_idf_normalised_and_rarer_tags_weigh_more(tagger: NoteTagger) -> None:
    tags = tagger.tag("M码黑色阔腿裤，推荐了同色系针织开衫，面料起球")
    assert abs(sum(t.weight**2 for t in tags) - 1.0) < 1e-3
    w = {t.key: t.weight for t in tags}
    assert tagger.idf  # the shipped IDF: sizes are in most notes, quality problems in few
    assert w["quality:起球"] > w["size:M"]


def test_own_tokenizer_leaves_jiebas_global_dictionary_alone(tagger: NoteTagger) -> None:
    assert tagger.tokens("腰有点紧")[-1][0] == "有点紧"
    assert "大了一码" not in jieba.dt.FREQ and "腰有点紧" not in (jieba.dt.FREQ or {})
