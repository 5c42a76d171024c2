"""Associate notes -> typed, normalised, weighted tags with character spans.

``NoteTagger`` owns its jieba tokenizer (never jieba's global one) loaded once with the
shipped retail lexicon, so the worker pays the dictionary load at start-up, not on the
first note. Rules are deliberately simple and inspectable:

- a clause (split at punctuation and at 但/不过) is the scope of a cue: after 喜欢 a
  colour/category/style is a ``preference``, after 不喜欢/不要 a ``dislike``, after 推荐 a
  category is ``recommended``, after 搭配/配 a ``pairing``; otherwise colours and categories
  are plain ``colour``/``category`` tags;
- a negation (不, 没有, ...) at most two tokens before a fit adjective, quality problem,
  family word or occasion cancels it (腰不紧 is no fit problem);
- fit = optional body part (up to three tokens back) + adjective: 腰 + 有点紧 -> 腰偏紧;
- a quality problem is a ``return_reason`` when the note speaks of a return or exchange;
- sizes come from a pattern (M码, XL, 38码, 均码), not from the dictionary.

Synonyms map to one canonical value through the lexicon (有点紧 / 偏紧 / 紧了 -> 偏紧).
Traditional characters are converted to simplified (OpenCC, length-preserving, else left
as they are) and full-width ASCII folded, so spans always index the original text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import jieba
import opencc

KINDS = {
    "colour",
    "category",
    "style",
    "quality",
    "occasion",
    "family",
    "pairing",
    "part",
    "adj",
    "cue_like",
    "cue_dislike",
    "cue_recommend",
    "cue_pair",
    "cue_return",
    "neg",
    "material",
    "cue_allergy",
    "hedge",
    "unsaid",
    "past",
    "companion",
}
TAG_TYPES = (
    "size",
    "colour",
    "category",
    "fit",
    "quality",
    "return_reason",
    "occasion",
    "family",
    "recommended",
    "pairing",
    "preference",
    "dislike",
    "allergy",
)
CLAUSE_BREAK = set("，。！？；,.!?;\n\r～~：:（）()【】[]")
CONTRAST = {"但", "但是", "不过", "可是", "然而", "就是"}
OK_WORDS = {"合适", "刚好", "正好", "可以", "还行", "没问题", "正常", "ok", "OK", "挺好", "不错"}
ADJ_CHARS = {"长": "长", "短": "短", "宽": "宽", "窄": "窄", "紧": "紧", "松": "松"}
BARE_ADJ_OK = {"紧", "松"}  # single-character adjectives that mean fit even without a body part
ACTION_BEFORE = {
    "换",
    "换了",
    "拿",
    "要",
    "改",
    "修",
    "剪",
    "建议拿",
    "换成",
}  # 换大一码 / 改裙长: an action, not a fit
SIZE_RE = re.compile(
    r"(?:(?<![A-Za-z0-9&*])|(?<=size))(XXXL|XXL|[2-5]XL|XL|XS|S|M|L)(?![A-Za-z0-9*型层楼栋座区线])(码|号)?"
    r"|(?<![\d月.])(2[2-9]|3\d|4[0-6])(码|号)"
    r"|(均码|加大码|大码)(?!头)",
    re.IGNORECASE,
)
# A size needs a size cue: its own 码, or trying on, wearing or a garment near it, never a
# date (4月23号, 25号到货), a model number (M300), a volume (5L, 256M) or a shape (S型).
SIZE_CUES = ("穿", "试穿", "码", "尺码", "size")
SHOE_NUMBER_CUES = ("穿", "鞋", "拿", "试", "换", "要", "尺", "码")
# Words (whole tokens, so 尝试 and 试用 do not count) that put a note about clothes on the body.
NOT_SIZES = ("两码事", "数码", "号码", "密码", "编码", "代码", "起码", "条码", "价码", "码头", "页码", "砝码")
APPAREL_CUES = frozenset("穿 穿着 穿了 试穿 码 尺码 上身 版型 身材".split())
ACCESSORIES = frozenset("包 腰带 围巾 丝巾 帽子".split())  # a bag's size is no fit of hers
# Family words that name the customer's own family only with a cue (我的孩子, 给妈妈买, 带孩子,
# 孩子3岁): on their own they are as often anyone's (书里的母亲, 教育孩子, 大卫的妈妈).
AMBIGUOUS_FAMILY = frozenset(
    "孩子 小孩 小孩子 娃 宝宝 父母 爸妈 老人 母亲 父亲 妈妈 两个孩子 老公 老婆 丈夫 爱人 先生 老爸 爸爸 父母亲".split()
)
# Of those, the ones that are no household fact as a clause's subject: 老人普遍……, 父母要给孩子……
# speak of anyone's; 妈妈告诉宝宝 is the writer herself. They need a possessive or an errand.
NEEDS_OWNER = frozenset("父母 老人 母亲 父亲 妈妈 爱人 小孩子 先生 老爸 爸爸 父母亲".split())
# A parent word in a sentence about her child is the writer herself (女儿……和妈妈讨论).
PARENT_WORDS = frozenset("妈妈 爸爸 妈 母亲 父亲".split())
OWN_CUES = frozenset("我 我的 我家 我们 自己 她 他 她的 他的 给 带 带着 陪 和 跟 家里 送 送给 买给 连".split())
PRONOUNS = frozenset("她 他 她的 他的".split())  # the customer in a note, unless someone else was named first
# A family word in a general statement is anyone's: 容易给孩子造成阴影, 大人在给小孩讲的同时,
# 朗读给孩子听的书, 给孩子朗读的好处 (a reader who reads to her own child says so: 我每天给宝宝讲).
GENERIC_BEFORE = frozenset("容易 大人 应该 家长 父母 教育 为 可以 考虑 教 如何 与 不能 有关".split())
GENERIC_AFTER = (
    "的爱",
    "之间",
    "的书",
    "书目",
    "的好处",
    "的同时",
    "的读物",
    "的故事",
    "听的",
    "看的",
    "的工作",
    "的话",
    "的父母",
    "的家长",
)
FIRST_PERSON = frozenset("我 我的 我家 我们 自己".split())
# Strong signs that a family word is the customer's own (issue 12): a first-person possessive
# right before it (我儿子, 我家宝宝, 我两岁的女儿), an age (女儿2岁半, 六岁的儿子) or an errand
# (给儿子买, 带孩子). A bare subject (孩子很喜欢) or a first person further off (我想孩子的
# 教育) is weak: in a short note it is hers, in a long text it counts only beside a strong one.
MY = frozenset("我 我的 我家 俺 俺家 偶家 咱家 自家 我们家 本人".split())
ERRANDS = frozenset("给 带 带着 陪 陪着 帮 替 送给 买给 送 为 留给".split())
MODALS = frozenset("要 应该 可以 能 不能 会 得 多 不妨 说".split())  # 要给孩子读: advice to anyone
KIN = frozenset("儿子 女儿 闺女 老公 老婆 丈夫 婆婆 公公".split())  # no one's in general, unlike 孩子
SKIPPABLE = frozenset("小 大 两个 亲爱的".split())  # between an owner and the word (我的小女儿)
PARENTHOOD = frozenset("初为父母 为人父母 当父母 做父母".split())  # 我们做父母的 is hers; 做父母要…… anyone's
EVERY = frozenset("每个 每一个 所有 所有的 很多 许多 一些 有的".split())  # 每个孩子: children in general
THEY = frozenset("他们 她们 人家 别人 他人 大家".split())
PLAYS_PARENT = frozenset("作为 做 当 做好 当好 成为".split())  # 作为一个母亲, 做父母的: the writer is one
QUOTE_OPEN = ("“", "「", '"', "‘")
AGE_BEFORE = re.compile(r"(?:\d+|[一二两三四五六七八九十]+)(?:周岁|岁|个月)[半多]?(?:了)?的?(?:小)?$")
AGE_AFTER = re.compile(
    r"^(?:已经|已|现在|今年|才|刚|刚刚|都|快|马上)?(?:(?:\d+|[一二两三四五六七八九十]+)多?(?:周岁|岁|个月)"
    r"|[一二三四五六]年级|上(?:小学|初中|高中|幼儿园|学前班))"
)  # 女儿2岁半, 小孩已十多岁, 小孩二年级, 儿子上幼儿园
WEARS = ("穿", "买", "试", "换", "戴", "带")
NOT_WEARING = ("穿越", "穿过", "穿插", "穿梭", "穿行", "穿透", "穿破", "穿针")
SHORT_TEXT = 80  # characters: associate notes are shorter (the labelled ones at most 56)
# Words that may lead a clause before its subject (反正孩子……, 不但宝宝不喜欢): still the subject.
LEADS = frozenset("反正 而且 结果 现在 后来 不但 因为 所以 连 可 就 还 也 都 本来 其实".split())
CONDITIONAL = frozenset("如果 如果说 假如 要是 若是 万一 的话 以后".split())  # 如果说儿子……: no fact about her
RELATIVES_AFTER = tuple("的亲戚 的朋友 的同事 的邻居 的同学 的家长".split())  # 宝宝的亲戚: someone else's
# An occasion the rest of its clause rates a place or a thing for is what it suits, not
# hers (出差住在这里是很不错的选择, 出差带着方便, 旅游商务皆可考虑, 度假好地方).
SUITABILITY = ("选择", "之选", "首选", "方便", "皆可", "好地方", "地方", "考虑", "理想")
# Things a hotel, a book or a screen has: a colour or defect named with them is not of her
# clothes (毛巾很旧还有破洞, 黄色的那种 of the towels, 人物有点变形 in a game).
NOT_HERS = frozenset("毛巾 浴巾 白毛巾 床单 被子 枕头 窗帘 地毯 人物 门 木门 沙发 床垫 床 牙刷 螺丝".split())
# A clause about the room (房间只配二件羽绒服, 房内连鞋拔也没有): what it names is the hotel's.
PLACES = frozenset("房间 房内 酒店 宾馆 饭店 客房 浴室 卫生间 大堂".split())
# An occasion in a review is hers with a sign that she is in it (来江门出差, 此次旅行, 出差时,
# 因为出差需要, 我经常出差); in a note about clothes the note itself is that sign.
OCCASION_CUES = frozenset(
    "我 我们 本人 自己 她 顾客 来 去 到 出去 回 时 的时候 期间 需要 用 穿 带 买 要 想 准备 参加 这次 此次 每次 "
    "经常 一直 平时 再 下次 上次 下周 上周 明天 周末 前 这几天 常 想要 打算 住 在 一次 正好 为了 结束".split()
)
PEOPLE = frozenset(
    "小姐 女孩 女生 姑娘 服务员 店员 模特 人 新娘 新郎 女士 先生 小青年 青年 人员 商务人员 朋友 人们 商务人 "
    "员工 女员工 男员工 工作人员 服务生 前台 保安 门童 女子 男子 新人 小伙子 女孩子 女巫".split()
)
SENTENCE_BREAK = set("。！？；!?;.\n\r")
NOT_AN_ITEM = ("斑点", "污渍", "污垢", "的污渍", "的印子", "的水", "的血", "的教条", "珍珠")
# A garment word inside another thing: 羽绒被子 is bedding, 红帽子系统 software, 鞋撑 (a typo
# for 携程 in a hotel review) no shoe.
NOT_A_GARMENT = ("被", "系统", "软件", "公司", "撑", "拔", "枕", "盒", "柜", "架", "刷", "油")
NOT_AN_OCCASION = tuple(
    "设施 中心 手册 旺季 淡季 房 场所 器材 用品 人员 的朋友 人群 城市 热点 的迅速 发展 宾馆 酒店 景点 胜地 "
    "的选择 的地方 的好地方 书 重量 的人 公司 会议 团队 规划 部门 目的地 充电器 之道 场 大饭店 饭店 山庄 后 "
    "停车 的冲动 的想法 小贴士 攻略 指南".split()
)
PERSONAL_OCCASIONS = {"运动"}
# Outside a clothes note a sport is hers only when she likes or does it (热爱健身, 每天跑步).
SPORT_CUES = frozenset("热爱 喜欢 爱 去 做 参加 经常 每天 坚持 平时 爱好 多 常".split())
NEEDS_CLOTHES = {"通勤"}  # 上班 is about clothes only in a note about clothes (上班穿), not 上班太晚
NOT_CLOTHES = {"时间", "行程", "预算", "资金", "安排", "工期", "时间上", "手头"}  # 时间太紧: no fit
PERSON_SELF = {"自己", "本人", "她自己", "他自己", "顾客", "客人"}
OPPOSITE = {"长": "短", "宽": "窄", "短": "长", "窄": "宽"}
SIZE_CANON = {"2XL": "XXL", "3XL": "XXXL", "加大码": "大码"}
MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class Context:
    """What the rest of the note says around a clause."""

    others_before: bool = False  # someone else (同事, 朋友, 您) named earlier in the sentence
    others_earlier: bool = False  # ... or anywhere earlier in the note: 她 may be that person
    not_hers_before: bool = False  # the sentence named a hotel's towels (毛巾，浴巾……黄色的那种)
    conditional_before: bool = False  # 如果说儿子……，那女儿……: the sentence is a hypothetical
    child_before: bool = False  # the sentence named a child of hers before (女儿……和妈妈讨论)
    child_earlier: bool = False  # ... or the text did, anywhere before the clause
    hers_in_sentence: bool = True  # the sentence names her or her purchase (我的书, 买的) somewhere
    generic_before: bool = False  # the sentence spoke of parents in general before (家长……从小就陪孩子)


@dataclass(frozen=True)
class Tag:
    type: str
    value: str
    start: int
    end: int
    surface: str
    weight: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.type}:{self.value}"


def _fold_width(text: str) -> str:
    """Full-width ASCII -> ASCII, one character for one, so spans stay valid."""
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else (" " if c == "\u3000" else c) for c in text)


def load_lexicon(text: str | None = None) -> dict[str, tuple[str, str]]:
    """surface -> (kind, canonical); lines are ``surface<TAB>kind<TAB>canonical``."""
    if text is None:
        text = resources.files("nlp").joinpath("data/retail_lexicon.tsv").read_text(encoding="utf-8")
    out: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in KINDS:
            raise ValueError(f"lexicon line {n}: expected surface<TAB>kind<TAB>canonical, got {line!r}")
        surface, kind = parts[0].strip(), parts[1].strip()
        canon = parts[2].strip() if len(parts) > 2 and parts[2].strip() else surface
        out[surface.lower()] = (kind, canon)
    return out


class NoteTagger:
    """Build once per process (about a second: jieba's dictionary plus ours), then ``tag``."""

    def __init__(self, lexicon: dict[str, tuple[str, str]] | None = None, idf: dict[str, float] | None = None) -> None:
        self.lexicon = load_lexicon() if lexicon is None else lexicon
        self.idf = load_idf() if idf is None else idf
        self.default_idf = max(self.idf.values(), default=1.0)
        self._tok = jieba.Tokenizer()
        self._tok.initialize()
        for surface in sorted(self.lexicon, key=len):
            if len(surface) > 1:
                self._tok.add_word(surface, freq=self._tok.suggest_freq(surface, tune=False) + 10_000)
        self._t2s = opencc.OpenCC("t2s")

    def use_lexicon(self, lexicon: dict[str, tuple[str, str]]) -> None:
        """Swap in an edited lexicon without a restart: new words join this tagger's own
        tokenizer, removed ones leave it (jieba's ``del_word``); jieba's global is untouched."""
        for surface in set(self.lexicon) - set(lexicon):
            if len(surface) > 1:
                self._tok.del_word(surface)
        for surface in sorted(set(lexicon) - set(self.lexicon), key=len):
            if len(surface) > 1:
                self._tok.add_word(surface, freq=self._tok.suggest_freq(surface, tune=False) + 10_000)
        self.lexicon = lexicon

    def normalise(self, text: str) -> str:
        folded = _fold_width(text)
        simple = str(self._t2s.convert(folded))
        return simple if len(simple) == len(folded) else folded

    def tokens(self, text: str) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        for _w, s, e in self._tok.tokenize(text.lower(), HMM=False):  # the lexicon is lower case (POLO衫)
            w = text[s:e]
            if not w.strip():
                continue
            parts = self._compound(w, s) if len(w) > 1 and w.lower() not in self.lexicon else None
            out.extend(parts or [(w, s, e)])
        return out

    def _compound(self, word: str, start: int) -> list[tuple[str, int, int]] | None:
        """A word jieba keeps whole (白衬衫, 黑裤子) read as our words when they cover it
        exactly and one is a garment; a word they do not cover (黑暗) stays what it is."""
        n = len(word)
        best: list[list[tuple[str, int, int]] | None] = [None] * (n + 1)
        best[0] = []
        for i in range(n):
            if best[i] is None:
                continue
            for j in range(n, i, -1):
                piece = word[i:j]
                if piece.lower() in self.lexicon and (best[j] is None or len(best[j] or []) > len(best[i] or []) + 1):
                    best[j] = [*(best[i] or []), (piece, start + i, start + j)]
        found = best[n]
        if not found or len(found) < 2:
            return None
        kinds = [self._kind(p)[0] for p, _s, _e in found]
        if "category" in kinds or all(k == "colour" for k in kinds):  # 白衬衫, 黑白灰
            return found
        return None

    def tag(self, text: str, masked: Sequence[Sequence[int]] = ()) -> list[Tag]:
        """Tags of one note, each with its span in ``text``, weighted by TF-IDF (L2 = 1).

        ``masked`` are the spans the PII masker replaced (s***@qq.com, 138****5678): no tag
        may come from inside one, whatever its letters look like."""
        if len(text) > MAX_NOTE_CHARS:
            raise ValueError(f"note of {len(text)} characters exceeds {MAX_NOTE_CHARS}")
        norm = self.normalise(text)
        toks = self.tokens(norm)
        kinds = [self._kind(w) for w, _s, _e in toks]
        tags: list[Tag] = []
        weak: set[tuple[int, int]] = set()
        sizes = self._sizes(norm, text, toks)
        returning = any(k[0] == "cue_return" and not self._negated(toks, i) for i, k in enumerate(kinds))
        apparel = (
            any(
                w in APPAREL_CUES
                or (w.startswith("穿") and not w.startswith(NOT_WEARING))  # 穿着; not 穿越时空, 穿插
                or ("码" in w and not any(x in w for x in NOT_SIZES))  # 一码, 大一码; not 数码产品
                or (k[0] == "category" and k[1] not in ACCESSORIES)
                or (k[0] == "part" and len(text) <= SHORT_TEXT)  # 腰有点紧; not 放大腿上 in a laptop review
                for (w, _s, _e), k in zip(toks, kinds, strict=True)
            )
            or any(t.surface[-1:] in ("码", "号") for t in sizes)
        )  # 38码, 穿38号; not 27号没房了
        other_at = next((e for (_w, _s, e), k in zip(toks, kinds, strict=True) if k[0] == "companion"), None)
        first_child = next(
            (e for (_w, _s, e), k in zip(toks, kinds, strict=True) if k == ("family", "有小孩")), len(text) + 1
        )
        for clause, before, sentence in self._in_sentences(toks):
            words = [toks[j][0] for j in before]
            ctx = Context(
                others_before=self._others_last([(toks[j][0], kinds[j][0]) for j in before]),
                others_earlier=other_at is not None and other_at <= clause[0][1],
                not_hers_before=any(w in NOT_HERS for w in words),
                conditional_before=any(w in CONDITIONAL for w in words),
                child_before=any(kinds[j] == ("family", "有小孩") for j in before),
                generic_before=any(toks[j][0] in ("家长", "家长们", "父母们", "做父母的") for j in before),
                hers_in_sentence=any(toks[j][0] in FIRST_PERSON or toks[j][0].startswith("买") for j in sentence),
                child_earlier=first_child <= clause[0][1],
            )
            tags.extend(self._clause_tags(clause, text, returning, apparel, ctx, weak))
        if len(text) > SHORT_TEXT:
            strong = {t.key for t in tags if t.type == "family" and (t.start, t.end) not in weak}
            tags = [t for t in tags if t.type != "family" or (t.start, t.end) not in weak or t.key in strong]
        tags = [t for t in tags if not _in_title(text, t.start)]
        tags.extend(sizes)
        if masked:
            tags = [t for t in tags if not any(t.start < e and s < t.end for s, e in masked)]
        return self._weigh(_dedupe(tags))

    def _in_sentences(
        self, toks: list[tuple[str, int, int]]
    ) -> Iterable[tuple[list[tuple[str, int, int]], list[int], list[int]]]:
        """Each clause, the indices of its sentence's tokens before it and all of them (a sentence ends at
        。！？; a clause also at commas, colons and 但): who else the sentence is about reaches
        past a comma (同事们都说：出差就住如家)."""
        sentence: list[int] = []
        for i in range(len(toks) + 1):
            w = toks[i][0] if i < len(toks) else "。"
            if w in SENTENCE_BREAK or (w and all(c in SENTENCE_BREAK for c in w)):
                for clause in self._clauses([toks[j] for j in sentence]):
                    start = clause[0][1]
                    yield clause, [j for j in sentence if toks[j][2] <= start], sentence
                sentence = []
            else:
                sentence.append(i)

    @staticmethod
    def _others_last(words: list[tuple[str, str]]) -> bool:
        """Someone else is the last person named (有朋友买了，我也买了 ends with her)."""
        for w, kind in reversed(words):
            if w in FIRST_PERSON or w in PERSON_SELF:
                return False
            if kind == "companion":
                return True
        return False

    def _clauses(self, toks: list[tuple[str, int, int]]) -> Iterable[list[tuple[str, int, int]]]:
        cur: list[tuple[str, int, int]] = []
        for t in toks:
            if t[0] in CLAUSE_BREAK or all(c in CLAUSE_BREAK for c in t[0]) or t[0] in CONTRAST:
                if cur:
                    yield cur
                cur = []
                continue
            cur.append(t)
        if cur:
            yield cur

    def _kind(self, word: str) -> tuple[str, str]:
        return self.lexicon.get(word.lower(), ("", ""))

    def _negated(self, clause: list[tuple[str, int, int]], i: int) -> bool:
        return any(self._kind(clause[j][0])[0] == "neg" for j in range(max(0, i - 2), i))

    def _clause_tags(
        self,
        clause: list[tuple[str, int, int]],
        text: str,
        returning: bool,
        apparel: bool = True,
        ctx: Context = Context(),
        weak: set[tuple[int, int]] | None = None,
    ) -> list[Tag]:
        """A clause's tags. Cues scope the rest of the clause: 喜欢/不要 make what follows a
        preference/dislike, 不要/就算了 after a thing refuse it (黑色的不要); a hedge (担心,
        会不会) makes the problems after it no facts; 没说 leaves a cue unsaid; a like or dislike
        after someone else (老公, 朋友) is theirs, not the customer's; a material with 过敏
        anywhere in the clause is an allergy. Fit without a body part needs a garment or
        trying on somewhere in the note (房间太大 is no fit)."""
        out: list[Tag] = []
        weak = set() if weak is None else weak
        cues: set[str] = set()
        kinds = [self._kind(w) for w, _s, _e in clause]
        allergic = any(k == "cue_allergy" for k, _c in kinds)
        past = any(k == "past" for k, _c in kinds)
        hedged = unsaid = other = False
        words = [w for w, _s, _e in clause]
        conditional = any(w in CONDITIONAL for w in words) or ctx.conditional_before or words[:2] == ["等", "我"]
        not_hers = any(w in NOT_HERS for w in words) or ctx.not_hers_before or (bool(words) and words[0] in PLACES)
        bought = any(w.startswith(("买", "拿", "换", "要")) for w, _s, _e in clause)
        refused_at: int | None = None
        plain: list[tuple[int, str, str, int, int, str]] = []  # things named with no cue: (index, kind, ...)
        for i, (word, s, e) in enumerate(clause):
            kind, canon = kinds[i]
            surface = text[s:e]

            def add(tag_type: str, value: str, start: int = s, end: int = e, surf: str = surface) -> None:
                out.append(Tag(tag_type, value, start, end, surf))

            if word in PERSON_SELF:
                other = False
            elif kind in ("family", "companion"):
                other = True
            if kind == "hedge":
                hedged = True
            elif kind == "unsaid":
                unsaid = True
            elif kind in ("cue_like", "cue_dislike") and (unsaid or other):
                continue  # nobody said so, or it is someone else's taste
            elif kind == "cue_like":
                if self._negated(clause, i):
                    cues.add("dislike")
                else:
                    cues.add("like")
            elif kind == "cue_dislike":
                cues.add("dislike")
                refused_at = i
            elif kind == "cue_recommend":
                cues.add("recommend")
            elif kind == "cue_pair":
                cues.add("pair")
            elif kind == "material":
                if allergic:
                    add("allergy", canon)
                elif "dislike" in cues:
                    add("dislike", canon)
                elif "like" in cues:
                    add("preference", canon)
                else:
                    plain.append((i, kind, canon, s, e, surface))
            elif kind in ("colour", "category", "style"):
                if unsaid:
                    continue  # 没说喜欢红色: nothing to learn about red
                if kind == "colour" and len(word) == 1 and not self._colour_word(clause, i, apparel):
                    continue  # 黑 in 黑暗中, 白 in 白跑一趟: a colour only before a garment or 色
                if kind == "colour" and len(word) == 1 and text[s:e] in (text[e : e + 1], text[s - 1 : s]):
                    continue  # 蓝蓝, 白白多交: a name or a manner, not a colour
                if kind == "colour" and text[e:].startswith(NOT_AN_ITEM):
                    continue  # 黄色斑点, 灰色的教条: no colour of anything she wears
                if kind == "category" and text[e:].startswith(NOT_A_GARMENT):
                    continue  # 羽绒被子, 红帽子系统, 鞋撑
                worn = kind in ("colour", "category") and self._worn_by_someone(clause, i)
                if (kind == "colour" and not_hers) or worn:
                    continue  # the hotel's towels; 穿白色礼服的小姐: not hers
                if kind == "category" and (
                    words[0] in PLACES
                    or any(
                        w in ("没有", "没送", "没", "不含", "不送", "不提供", "含") for w in words[max(0, i - 3) : i]
                    )
                ):
                    continue  # 房间只配二件羽绒服, 没送包包, 不含羽绒服: not hers
                if (
                    kind == "category"
                    and (not apparel or len(text) > SHORT_TEXT)  # a clothes note has its companion rules
                    and not any(w in FIRST_PERSON for w in words)
                    and any(w in PEOPLE or w.endswith("者") for w in words[max(0, i - 8) : i])
                ):
                    continue  # 门童都带着……帽子, 巴黎街头女子裙子, 打扫卫生者晾晒裤子: what other people wear
                if kind == "category" and not apparel and "pair" in cues and canon == "包":
                    continue  # 最好能配个包包: a laptop's bag
                if (
                    kind == "category"
                    and len(text) > SHORT_TEXT
                    and ctx.child_earlier
                    and any(w in ("他", "她", "他的", "她的") for w in words)
                    and not any(w in FIRST_PERSON for w in words)
                ):
                    continue  # 儿子……给他洗完澡穿裤子: her child's clothes in a long review
                if kind == "colour" and not (apparel or cues) and self._names_item(clause, i, text):
                    add(kind, canon)  # 白色的包包: the colour of her bag, in a note not about clothes
                    continue
                if (
                    kind == "colour"
                    and len(text) > SHORT_TEXT
                    and not cues & {"like", "dislike"}
                    and not any(w in FIRST_PERSON or w.startswith(WEARS) for w in words)
                    and not self._names_item(clause, i, text)
                ):
                    continue  # 扑面而来的黑色: no colour of hers in a long text
                if kind == "colour" and not (apparel or cues & {"like", "dislike"}):
                    plain.append((i, kind, canon, s, e, surface))  # refused later (紫色不考虑), else no tag
                    continue  # a colour of clothes, in a note about clothes (not a laptop's)
                if "dislike" in cues:
                    add("dislike", canon)
                elif "like" in cues:
                    add("preference", canon)
                elif kind == "category" and "recommend" in cues:
                    add("recommended", canon)
                elif kind == "category" and "pair" in cues and (apparel or canon != "包"):  # 配个包包: a laptop's bag
                    add("pairing", canon)
                else:
                    plain.append((i, kind, canon, s, e, surface))
                    if kind != "style":
                        add(kind, canon)
            elif kind == "pairing":
                if words[0] in PLACES:
                    continue  # 房间只配二件羽绒服: the room's
                if apparel or canon != "套装":  # 套装 in a note about clothes; a laptop bundle is no outfit
                    add("pairing", canon)
            elif kind in ("quality", "occasion", "family"):
                if self._negated(clause, i) or (hedged and kind == "quality"):
                    continue
                if kind == "quality" and not apparel and len(text) > SHORT_TEXT and not ctx.hers_in_sentence:
                    continue  # 盈利严重缩水, 夸张、变形、荒诞, 有色差 of a towel: no defect of anything she bought
                if kind == "quality" and not_hers:
                    continue  # 毛巾……破洞: the hotel's towel
                if kind in ("family", "occasion") and conditional:
                    continue  # 如果说儿子……: a hypothetical
                strength = self._own(clause, i, text, ctx) if kind == "family" else 2
                if not strength:
                    continue
                if kind == "family" and text[e:].startswith(RELATIVES_AFTER):
                    continue  # 新得了宝宝的亲戚: a relative's baby
                if kind == "family" and i > 0 and clause[i - 1][0] in PRONOUNS and ctx.others_earlier:
                    continue  # 被同事抢走了！据说他儿子很喜欢: the colleague's son
                if kind == "family" and word in PARENT_WORDS and (ctx.child_before or text[e : e + 1] == "桑"):
                    continue  # 女儿……和妈妈讨论: the writer is the mother; 妈妈桑 is no mother
                if kind == "family" and canon == "孕期" and text[e : e + 1] in ("前", "后"):
                    continue  # 怀孕前: not pregnant now
                if kind == "occasion" and self._of_others(clause, i, text):
                    continue  # 来天津出差旅游的朋友, 很少出差的商务人员: other people's trips
                if (
                    kind == "occasion"
                    and not apparel
                    and canon in PERSONAL_OCCASIONS
                    and not (
                        any(w in SPORT_CUES for w in words[max(0, i - 3) : i])
                        and any(w in FIRST_PERSON or w in PERSON_SELF for w in words)
                    )
                ):
                    continue  # 提高运动灵感, 思想解放运动, 通过运动和改变饮食: no sport she likes or does
                if kind == "occasion" and not apparel and text[e : e + 1] == "前":
                    continue  # 过年前看了: a date, not an occasion
                if (
                    kind == "occasion"
                    and not apparel  # 要参加朋友的婚礼，想买裙子 is hers
                    and not any(w in FIRST_PERSON for w in words[:i])
                    and any(w in PEOPLE for w in words[max(0, i - 8) : i])
                ):
                    continue  # 3对新人在那里举行婚礼: other people's
                if kind == "occasion" and not apparel and any(w in ("想", "想去", "希望", "梦想") for w in words[:i]):
                    continue  # 我想去旅游 in a book review: a wish, not a trip
                if kind == "occasion" and any(w in ("建议", "推荐", "那些", "有些人", "别人") for w in words[:i]):
                    continue  # 建议一个人出差可以去住, 那些来旅游的: advice, other people
                if kind == "occasion" and (ctx.others_before or any(w.startswith(SUITABILITY) for w in words[i + 1 :])):
                    continue  # 同事们都说：出差就住如家; 出差住这里是不错的选择
                if kind == "occasion" and canon in NEEDS_CLOTHES and not apparel:
                    continue
                if (
                    kind in ("occasion", "family")
                    and any(clause[j][0] in ("适合", "不适合", "适用", "对于", "小时候") for j in range(i))
                    and not (i > 0 and clause[i - 1][0] == "的" and any(w in FIRST_PERSON for w in words[:i]))
                ):
                    continue  # 适合出差, 适合小孩的书, 小时候爸妈: what it suits, not who she is now
                if kind == "family" and canon == "孕期" and any(w in ("时", "的时候", "那时") for w in words[i + 1 :]):
                    continue  # 我怀孕生儿子时看的: a past pregnancy
                if kind == "occasion" and not apparel and not any(w in OCCASION_CUES for w in words):
                    continue  # 旅游商务皆可考虑, 旅游规划师: nothing says she is on one
                if kind == "occasion" and (hedged or other or text[e:].startswith(NOT_AN_OCCASION)):
                    continue  # 适合出差 says what it suits; 健身设施, 旅游旺季 are no occasion of hers
                if kind == "family" and text[e : e + 1] == "们":
                    continue  # 孩子们: children in general
                if kind == "family" and canon == "孕期" and past:
                    continue  # 之前怀孕的时候: not pregnant now
                if kind == "quality":
                    add("return_reason" if returning else "quality", canon)
                else:
                    add(kind, canon)
                    if strength < 2:
                        weak.add((s, e))
            elif kind == "adj":
                if hedged or self._negated(clause, i) or (i > 0 and clause[i - 1][0] in ACTION_BEFORE):
                    continue
                if any(clause[j][0] in ("别", "不要", "不能", "别太") for j in range(max(0, i - 2), i)):
                    continue  # 腰别太紧 / 不要太短的: a wish, not how it fits
                if i + 1 < len(clause) and clause[i + 1][0] in ("问题", "毛病", "瑕疵"):
                    continue  # 有点小问题: a small problem, not a small size
                if any(w in PLACES or w in NOT_HERS for w in words[:i]):
                    continue  # 房间小了点: the room, not her clothes
                if re.match(r"(了)?一[颗个块根条张只]", text[e : e + 3]):
                    continue  # 小了一颗螺丝: one missing, not a size
                nxt = [w for w, _s, _e in clause[i + 1 : i + 3]]
                if nxt[:1] == ["的"] and len(nxt) > 1 and (nxt[1] in PEOPLE or self._kind(nxt[1])[0] == "family"):
                    continue  # 太大的孩子: an older child, not a size
                part = next(
                    (j for j in range(i - 1, max(-1, i - 4), -1) if self._kind(clause[j][0])[0] == "part"), None
                )
                if part is not None and (apparel or len(text) <= SHORT_TEXT):
                    pw, ps, _pe = clause[part]
                    add("fit", f"{self._kind(pw)[1]}偏{canon}", ps, e, text[ps:e])
                elif part is not None or not apparel or (i > 0 and clause[i - 1][0] in (*NOT_CLOTHES, "得")):
                    continue  # 光驱有点松, 房间小了点, 催得很紧: fit is about clothes in the note
                elif (len(word) > 1 or canon in BARE_ADJ_OK) and not (word.endswith("一码") and bought):
                    add("fit", f"偏{canon}")  # 买了大一码 is a purchase, not a fit
            elif (
                kind == "part"
                and word[-1] in ADJ_CHARS
                and text[e : e + 1] not in ("裤", "衫", "裙", "袖")  # 长衣长裤: long clothes, no 衣长
                and len(word) > 1
                and not hedged
                and not (i > 0 and clause[i - 1][0] in ACTION_BEFORE)
            ):
                # 袖长 / 肩宽 on their own mean "too long / too wide"; 袖长合适 does not;
                # 袖长不够 is too short.
                rest = clause[i + 1 :]
                if rest and rest[0][0] in ("不够", "不太够"):
                    add("fit", f"{canon}偏{OPPOSITE[word[-1]]}", s, rest[0][2], text[s : rest[0][2]])
                elif "adj" not in [self._kind(w)[0] for w, _s, _e in rest] and not any(
                    w in OK_WORDS for w, _s, _e in rest
                ):
                    add("fit", f"{canon}偏{ADJ_CHARS[word[-1]]}")
        if refused_at is not None and not any(
            kinds[j][0] in ("colour", "category", "style", "material") for j in range(refused_at + 1, len(clause))
        ):
            # 黑色的不要 / 红色就算了: what came before the refusal is refused
            named = {(s, e) for _i, _k, _c, s, e, _sf in plain if _i < refused_at}
            out = [t for t in out if (t.start, t.end) not in named]
            out.extend(Tag("dislike", c, s, e, sf) for i, _k, c, s, e, sf in plain if i < refused_at)
        return out

    def _own(self, clause: list[tuple[str, int, int]], i: int, text: str, ctx: Context = Context()) -> int:
        """How surely a family word names the customer's own: 2 (a possessive right before it,
        an age, an errand: 我的孩子, 女儿2岁, 给妈妈买), 1 (the clause's subject, a first person
        further off: weak, see ``SHORT_TEXT``) or 0 (someone else's or anyone's: 大卫的妈妈,
        教育孩子, 同事……她女儿, “妈妈，……” called out to the writer)."""
        word, s, e = clause[i]
        canon = self._kind(word)[1]
        before = [w for w, _s, _e in clause[max(0, i - 4) : i]]
        ambiguous = word in AMBIGUOUS_FAMILY or canon == "孕期"
        if text[s - 1 : s] in QUOTE_OPEN or (before and before[-1] in QUOTE_OPEN):
            return 0  # “妈妈，水泥搅拌车！”: a child calling out to the writer
        if any(w in THEY for w in before) or (before and (before[-1] in PLAYS_PARENT or before[-2:-1] == ["作为"])):
            return 0  # 他们心中儿子, 作为一个母亲, 做父母的: others', or the writer as a parent
        if text[e:].startswith(("的人", "们")) or (word in KIN and text[e : e + 1] in ("心", "家", "身")):
            return 0  # 为人父母的人, 孩子们: people in general
        owned = [w for w in before if w not in SKIPPABLE]
        if owned and owned[-1] == "自己" and any(self._kind(w)[0] == "companion" for w, _s, _e in clause[:i]):
            return 0  # 作者……讲了自己小孩子: the author's own
        if owned and owned[-1] == "的":
            # 我的孩子, 她的女儿 are hers; 大卫的妈妈, 书中的母亲, 哈桑的儿子, 可爱的女儿 are not
            owner = owned[-2] if len(owned) > 1 else ""
            if owner in MY or owner == "顾客" or (owner == "她" and len(text) <= SHORT_TEXT and not ctx.others_earlier):
                return 2
            return 2 if AGE_BEFORE.search(text[max(0, s - 8) : s]) else 0
        if any(w in EVERY for w in before):
            return 0  # 每个孩子都有……: anyone's
        if before and before[-1] in ("好", "好的", "个", "一个", "位", "一位"):
            return 0  # 找个好老公, 生了一个女儿 in a story: anyone's
        if canon == "有小孩" and (AGE_BEFORE.search(text[max(0, s - 8) : s]) or AGE_AFTER.match(text[e : e + 8])):
            return 2  # 两岁的儿子, 宝宝一岁两个月, 孩子现在1岁半
        if owned and owned[-1] in MY:
            return 2  # 我儿子, 我家宝宝, 我可爱的女儿
        if len(owned) > 1 and owned[-1] in ("和", "跟", "陪", "陪着", "带着", "给") and owned[-2] in MY:
            return 2  # 我和宝宝, 我陪儿子
        if owned and owned[-1] in ("她", "她的", "顾客", "顾客的", "客人") and not ctx.others_earlier:
            # a note about her: 她老公, 顾客的女儿; in a long first-person text 她 is someone else
            return 2 if owned[-1].startswith(("顾客", "客人")) or len(text) <= SHORT_TEXT else 0
        if word == "先生":
            return 0  # 于丹先生, 接待我的先生, BABA先生: a title; 我先生, 我和先生, 她先生 were taken above
        if word in KIN:
            if ctx.others_before or (ctx.others_earlier and any(w in PRONOUNS for w in before)):
                return 0  # 同事……她女儿: the colleague's
            if before and before[-1] in ERRANDS:
                return 2  # 要给儿子买 is an errand of hers, not advice
            return 1 if ctx.others_earlier else 2  # 女儿 and 老公 are nobody's in general
        if canon == "有小孩" and word in PARENTHOOD:
            return 2 if owned and owned[-1] in FIRST_PERSON else 1  # 做父母一定要……: anyone who is one
        if not ambiguous:
            return 2  # 两个孩子: no one else's by its nature
        if all(w in LEADS for w in before):
            # the clause's subject: in a note about her, her family (孩子三岁, 老公在旁边等); a
            # clause of that word alone is someone calling out (他说，妈妈，……)
            return int(len(clause) > 1 and word not in NEEDS_OWNER and not ctx.others_earlier)
        if before[-1] in ("说", "叫", "喊") or before[-2:] == ["要", "给"]:
            return 0  # 她说妈妈给我买: she is the mother; 要给孩子读: advice to anyone
        if before[-1] in ("好", "好的"):
            return 0  # 找个好老公: anyone's
        mine = any(w in FIRST_PERSON for w in before)
        if not mine and (
            ctx.generic_before
            or any(w in GENERIC_BEFORE for w, _s, _e in clause[:i])
            or any(w in GENERIC_AFTER for w in self._rest(text, clause, i))
        ):
            return 0  # a general statement about anyone's children
        earlier = [w for w, _s, _e in clause[:i]]
        if not mine and ctx.others_earlier and any(w in PRONOUNS for w in earlier):
            return 0  # 同事……她常会买些书给孩子: once someone else is named, 她 may be that person
        if not mine and ctx.others_before:
            return 0  # 几个同事托我买……特别是送给父母: their parents
        if before[-1] in ERRANDS and not any(w in MODALS for w in before):
            if len(text) > SHORT_TEXT and any(w in ("他", "她", "他们", "她们") for w in earlier):
                return 1  # 他……给孩子创造着: the author's errand, in a long text
            return 2  # 给妈妈买, 带孩子来, 陪孩子
        owners = [w for w in before if w in OWN_CUES]
        if owners:
            return 0 if ctx.others_earlier and all(w in PRONOUNS for w in owners) else 1
        after = text[e : e + 6]
        if after.startswith(("的妈", "的爸", "他妈", "她妈", "他爸", "她爸")):
            return 2  # 两个孩子的妈: she is the mother
        return 0

    @staticmethod
    def _rest(text: str, clause: list[tuple[str, int, int]], i: int) -> list[str]:
        """The rest of the clause after word ``i`` as two-to-four-character windows."""
        tail = text[clause[i][2] : clause[-1][2]][:8]
        return [tail[j : j + n] for n in (2, 3, 4) for j in range(len(tail) - n + 1)]

    def _of_others(self, clause: list[tuple[str, int, int]], i: int, text: str) -> bool:
        """来天津出差旅游的朋友: the occasion describes people named after it."""
        for w, _s, e in clause[i + 1 : i + 4]:
            if w == "的":
                after = text[e : e + 4]
                return after.startswith(tuple(PEOPLE)) or any(self._kind(after[:n])[0] == "companion" for n in (2, 3))
        return False

    def _worn_by_someone(self, clause: list[tuple[str, int, int]], i: int) -> bool:
        """穿白色礼服的小姐: a colour or garment that a person named after it wears."""
        rest = [w for w, _s, _e in clause[i + 1 : i + 6]]
        return any(
            rest[j] == "的" and (rest[j + 1] in PEOPLE or "".join(rest[j + 1 : j + 3]) in PEOPLE)  # 女 + 员工
            for j in range(len(rest) - 1)
        )

    def _names_item(self, clause: list[tuple[str, int, int]], i: int, text: str) -> bool:
        """A colour right before an item (白色的包包, 黑色背包): that item's colour."""
        rest = clause[i + 1 : i + 3]
        if rest and rest[0][0] == "的":
            rest = rest[1:]
        if not rest or self._kind(rest[0][0])[0] != "category":
            return False
        return not text[rest[0][2] :].startswith(NOT_A_GARMENT)

    def _colour_word(self, clause: list[tuple[str, int, int]], i: int, apparel: bool) -> bool:
        """A one-character colour (黑, 白) names a colour before a garment, 色 or 款, or before
        的 in a note about clothes; inside other words it is no colour."""
        if i > 0 and self._kind(clause[i - 1][0])[0] == "colour":
            return True  # 黑白灰: a run of colours
        if i + 1 >= len(clause):
            return False
        nxt = clause[i + 1][0]
        if self._kind(nxt)[0] in ("category", "style", "material", "colour") or nxt in (
            "色",
            "款",
            "系",
            "色系",
            "款式",
        ):
            return True
        if nxt != "的" or not apparel:
            return False
        after = clause[i + 2][0] if i + 2 < len(clause) else ""
        # 红的那件, 黑的不要 name a colour; 涉黄的片段, 林红的性关系 are other words with a noun after
        return not (len(after) > 1 and not self._kind(after)[0] and not after.startswith(("那", "这")))

    def _sizes(self, norm: str, text: str, toks: list[tuple[str, int, int]]) -> list[Tag]:
        out = []
        for m in SIZE_RE.finditer(norm):
            letters, numbers, words = m.group(1), m.group(3), m.group(5)
            if letters and len(letters) == 1 and not m.group(2) and not self._size_context(norm, toks):
                continue  # S, M, L alone need a cue; XL, XXL, XS do not appear by chance
            if numbers and m.group(4) == "号" and not self._shoe_number(norm, m.start(), m.end()):
                continue
            raw = (letters or numbers or words).upper()
            out.append(Tag("size", SIZE_CANON.get(raw, raw), m.start(), m.end(), text[m.start() : m.end()]))
        return out

    def _size_context(self, norm: str, toks: list[tuple[str, int, int]]) -> bool:
        """A size cue or a garment in the note around a one-letter size (试穿M, L的连衣裙)."""
        low = norm.lower()
        if any(c in low for c in SIZE_CUES):
            return True
        return any(self._kind(w)[0] in ("category", "part") for w, _s, _e in toks)

    @staticmethod
    def _shoe_number(norm: str, start: int, end: int) -> bool:
        """38号 is a size when worn, tried or a shoe is near (穿38号, 38号的鞋), not a day."""
        before, after = norm[max(0, start - 4) : start], norm[end : end + 2]
        return any(c in before for c in SHOE_NUMBER_CUES) or after.startswith(("鞋", "的鞋", "码"))

    def _weigh(self, tags: list[Tag]) -> list[Tag]:
        counts: dict[str, int] = {}
        for t in tags:
            counts[t.key] = counts.get(t.key, 0) + 1
        raw = {k: n * self.idf.get(k, self.default_idf) for k, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in raw.values())) or 1.0
        return [replace(t, weight=round(raw[t.key] / norm, 4)) for t in tags]


def _dedupe(tags: list[Tag]) -> list[Tag]:
    """One tag per (key, span); a span claimed by a longer tag of the same type wins."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for t in sorted(tags, key=lambda t: (t.start, -(t.end - t.start))):
        if (t.key, t.start, t.end) in seen:
            continue
        seen.add((t.key, t.start, t.end))
        out.append(t)
    return out


COMMON_WORD_FREQ = 20_000  # jieba's dictionary frequency above which a word is everyday Chinese


def candidates(
    tagger: NoteTagger, texts: Iterable[str], *, limit: int = 30, min_count: int = 3
) -> list[tuple[str, int, str]]:
    """Words the notes use often that the lexicon does not know: (word, notes, an example).

    What a store operations lead reviews to grow the lexicon (`salespulse notes candidates`):
    Chinese words of two or more characters, not in the lexicon, not stopwords, not everyday
    words by jieba's dictionary frequency; counted once per note, most frequent first."""
    stop = set(resources.files("nlp").joinpath("data/stopwords.txt").read_text(encoding="utf-8").split())
    counts: dict[str, int] = {}
    example: dict[str, str] = {}
    for text in texts:
        norm = tagger.normalise(text)
        seen: set[str] = set()
        for w, s, e in tagger.tokens(norm):
            if len(w) < 2 or not CJK.fullmatch(w) or w in seen or w.lower() in tagger.lexicon or w in stop:
                continue
            if tagger._tok.FREQ.get(w, 0) > COMMON_WORD_FREQ:
                continue
            seen.add(w)
            counts[w] = counts.get(w, 0) + 1
            example.setdefault(w, norm[max(0, s - 12) : e + 12])
    ranked = sorted((c, w) for w, c in counts.items() if c >= min_count)
    return [(w, c, example[w]) for c, w in sorted(ranked, key=lambda cw: (-cw[0], cw[1]))[:limit]]


CJK = re.compile(r"[\u4e00-\u9fff]+")


def load_idf(text: str | None = None) -> dict[str, float]:
    if text is None:
        path = resources.files("nlp").joinpath("data/tag_idf.json")
        if not path.is_file():
            return {}
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    return {str(k): float(v) for k, v in data["idf"].items()}


def fit_idf(tagger: NoteTagger, notes: Iterable[str]) -> dict[str, Any]:
    """Smoothed IDF of every tag key over a notes corpus (scikit-learn's TF-IDF definition)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [[t.key for t in tagger.tag(n)] for n in notes]
    vec = TfidfVectorizer(analyzer=lambda d: d, smooth_idf=True)
    vec.fit(docs)
    idf = {k: round(float(vec.idf_[i]), 4) for k, i in sorted(vec.vocabulary_.items())}
    return {"documents": len(docs), "idf": idf}


def _in_title(text: str, at: int) -> bool:
    """Inside a title (《我的妈妈是精灵》): the book's words, not the customer's."""
    opened = text.rfind("《", 0, at)
    return opened >= 0 and text.find("》", opened, at) < 0
