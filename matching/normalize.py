"""Map free text (a worker's skill, a job title) onto occupations of the taxonomy.

Stages, first hit wins (docs/occupations.md):
1. clean: NFKC (full-width to half-width), lower case, traditional to simplified for the
   characters the taxonomy uses, known misspellings, job-ad filler and quantities out;
2. exact: the cleaned text, or it with a safe prefix/suffix (会…, …师傅, …的) removed, is a
   canonical name or synonym; a term listed as ambiguous (司机, 师傅…) gives no match;
3. contains: names and synonyms found inside the text, longest first; the rightmost one
   names the occupation (Chinese compounds put the head last: 电子厂质检员 is a 质检员);
4. fuzzy: rapidfuzz over the names and synonyms, with a cutoff, a minimum length and a
   margin over the best other occupation. It repairs typos and variants; it does not
   judge meaning (电工 and 电焊工 score 80 and are different trades).
Otherwise the text stays unmatched: kept as typed, never forced onto an occupation.
A text listing several trades (电焊工、钢筋工) has no single occupation: ``normalize``
returns None for it and ``normalize_many`` returns each.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from rapidfuzz import fuzz, process

from matching.taxonomy import Occupation, Taxonomy, fold, load_taxonomy

Method = Literal["exact", "synonym", "contains", "fuzzy"]
Scorer = Callable[..., float]

FUZZY_SCORER: Scorer = fuzz.ratio
FUZZY_CUTOFF = 80.0
FUZZY_MIN_LEN = 3  # one typo in a 2-character term is half of it
FUZZY_MAX_LEN = 10  # longer text is a sentence, not a misspelt term
FUZZY_MARGIN = 5.0  # over the best term of any other occupation

# Traditional characters met in the taxonomy's vocabulary (pairs: traditional, simplified).
_TRADITIONAL = (
    "電电銲焊鋼钢築筑師师員员護护裝装車车駕驾駛驶貨货機机務务養养嬰婴環环衛卫潔洁傢家塗涂"
    "層层鋁铝門门監监質质檢检線线產产倉仓庫库運运輸输遞递賣卖網网農农藝艺飼饲麵面點点廳厅"
    "調调礦矿紡纺織织縫缝紉纫擋挡設设備备維维鉗钳銑铣數数製制氣气廚厨鍋锅燒烧場场豬猪雞鸡"
    "鴨鸭魚鱼蝦虾採采葉叶樹树殺杀掛挂髮发導导營营銷销際际區区縣县鎮镇鄉乡歲岁長长們们個个"
    "來来時时後后開开關关業业醫医療疗顧顾兒儿園园媽妈碼码頭头資资經经驗验熟熟練练聘聘職职"
    "組组鋸锯錘锤磚砖頂顶燈灯隧隧橋桥壓压鑄铸鍛锻鍍镀拋抛繞绕刷刷藥药紗纱燙烫蠶蚕蜂蜂灑洒"
    "掃扫衛卫專专應应徵征鐵铁軌轨號号連连結结單单雜杂貼贴幫帮飯饭館馆粉粉燉炖滷卤涼凉剪剪"
    "鏟铲輛辆載载壩坝處处計计劃划體体啟启鑽钻礎础樑梁塊块動动陳陈錶表膠胶針针鈑钣沖冲壓压"
    "鉚铆噴喷漿浆軟软碩硕鍍镀鐘钟點点賓宾館馆櫃柜臺台檯台檢检驗验傳传達达險险搬搬療疗"
)
_TRAD_TABLE = str.maketrans(
    {_TRADITIONAL[i]: _TRADITIONAL[i + 1] for i in range(0, len(_TRADITIONAL), 2)}
)

# Misspellings seen in job ads and chat (pinyin input picks the homophone).
# fmt: off
TYPOS = {
    "电悍": "电焊", "电汗": "电焊", "电捍": "电焊", "电旱": "电焊", "亚弧": "氩弧", "氩孤": "氩弧",
    "二保汗": "二保焊", "二保悍": "二保焊", "钢精": "钢筋", "钢劲": "钢筋", "钢巾": "钢筋",
    "切筑": "砌筑", "彻筑": "砌筑", "沏砖": "砌砖", "切砖": "砌砖", "油膝": "油漆", "油柒": "油漆",
    "模版": "模板", "混泥土": "混凝土", "混领土": "混凝土", "抹恢": "抹灰", "末灰": "抹灰",
    "摸灰": "抹灰", "插车": "叉车", "差车": "叉车", "保结": "保洁", "快第": "快递", "仓官": "仓管",
    "苍管": "仓管", "装泄": "装卸", "质捡": "质检", "注朔": "注塑", "住塑": "注塑", "数空": "数控",
    "护里": "护理", "月扫": "月嫂", "育英": "育婴", "保妈": "保姆", "厨狮": "厨师", "面点狮": "面点师",
    "瓷转": "瓷砖", "磁砖": "瓷砖", "架仔": "架子", "挖掘级": "挖掘机", "叉车师付": "叉车师傅",
    "师付": "师傅", "防氺": "防水", "装修功": "装修工", "水店工": "水电工", "保按": "保安",
}
# fmt: on
_TYPO_RE = re.compile("|".join(sorted(map(re.escape, TYPOS), key=len, reverse=True)))

# Job-ad filler removed anywhere in the text.
_FILLER = (
    "高薪诚聘|高薪招聘|高薪急招|急招|急聘|诚聘|招聘|聘请|招收|长期招|长期|若干名|若干|数名|多名|大量|"
    "熟练|有经验|经验丰富|经验|技术好|手艺好|工资高|待遇好|待遇优厚|包吃包住|包吃住|包住|包吃|"
    "男女不限|男女均可|限男性|限女性|限男|限女|日结|月结|周结|现结|月薪|日薪|时薪|底薪|工资|提成|"
    "五险一金|买保险|要求|优先|以上|以下|求职|找工作|找活|寻找|岗位|职位|工作|本人|我是|我会|"
    "擅长|精通|持证上岗|持证|专业|资深|高级|中级|初级|金牌|老手|带班|可带徒|数人"
)
_FILLER_RE = re.compile(_FILLER)
_QUANTITY_RE = re.compile(
    r"(?<![a-z0-9])\d+(?:\.\d+)?(?:余|多)?(?:名|个|位|人|元|块|岁|k|千|万)?(?:/|每)?(?:天|月|小时|时|h)?"
    r"(?![a-z])"
)
_PREFIXES = (
    "的",
    "会",
    "能",
    "懂",
    "做",
    "当",
    "干",
    "找",
    "招",
    "聘",
    "想",
    "要",
    "老",
    "搞",
    "一名",
    "一个",
)
_SUFFIXES = ("的", "人员", "师傅", "工人", "人", "们", "一名", "岗", "员", "工")
_APPENDS = ("工", "员", "师", "师傅")  # 巡检 -> 巡检员, 煮面 -> 煮面师傅
_WEAK_HEADS = frozenset({"普工", "操作工", "作业员", "工人"})  # 注塑普工 is a 注塑工
_SEPARATORS = re.compile(r"[、，,;；/|+＋\n]|以及|和|及|或者|或|兼|也会|还会|也能|还能|也做|还做")


@dataclass(frozen=True, slots=True)
class Match:
    """How a text matched an occupation. ``score`` is 0-100."""

    text: str
    term: str  # the name or synonym (cleaned) it matched
    method: Method
    score: float
    key: str
    code: str | None
    name: str
    family: str

    @classmethod
    def of(cls, occ: Occupation, *, text: str, term: str, method: Method, score: float) -> Match:
        return cls(text, term, method, score, occ.key, occ.code, occ.name, occ.family)


def clean(text: str) -> str:
    """Comparable form: half-width, lower case, simplified, typos fixed, filler and
    quantities and punctuation removed."""
    text = fold(text).translate(_TRAD_TABLE)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")
    text = _QUANTITY_RE.sub("", _FILLER_RE.sub("", text))
    return _TYPO_RE.sub(lambda m: TYPOS[m.group(0)], text)


def variants(cleaned: str) -> list[str]:
    """The cleaned text, then it without one safe prefix and/or suffix (longest first)."""
    out = [cleaned]
    heads = [cleaned] + [cleaned[len(p) :] for p in _PREFIXES if cleaned.startswith(p)]
    for head in heads:
        if len(head) >= 2 and head not in out:
            out.append(head)
        for s in _SUFFIXES:
            if head.endswith(s) and len(head) - len(s) >= 2 and head[: -len(s)] not in out:
                out.append(head[: -len(s)])
    out = [out[0], *sorted(out[1:], key=len, reverse=True)]
    return out + [v + a for v in out for a in _APPENDS if len(v) >= 2]


class Normalizer:
    """Free text to one occupation, or None. Build once; ``normalize`` is pure."""

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        *,
        scorer: Scorer = FUZZY_SCORER,
        cutoff: float = FUZZY_CUTOFF,
        min_len: int = FUZZY_MIN_LEN,
        margin: float = FUZZY_MARGIN,
    ) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        self.scorer, self.cutoff, self.min_len, self.margin = scorer, cutoff, min_len, margin
        self._terms: dict[str, tuple[Occupation, bool]] = {}  # cleaned term -> (occ, is name)
        for occ in self.taxonomy:
            for term in occ.terms:
                self._terms.setdefault(clean(term) or fold(term), (occ, term == occ.name))
        self._ambiguous = {clean(t) or t for t in self.taxonomy.ambiguous}
        self._choices = list(self._terms)
        self._by_length = sorted({*self._terms, *self._ambiguous}, key=len, reverse=True)

    def normalize(self, text: str) -> Match | None:
        found = {m.key: m for m in self.extract(text)}
        return next(iter(found.values())) if len(found) == 1 else None

    def extract(self, text: str) -> list[Match]:
        """One match per listed part of ``text`` that names an occupation."""
        parts = [p for p in _SEPARATORS.split(text) if p.strip()]
        return [m for m in map(self._one, parts) if m is not None]

    def _one(self, text: str) -> Match | None:
        cleaned = clean(text)
        if not cleaned:
            return None
        return (
            self._exact(text, cleaned)
            or self._contains(text, cleaned)
            or self._fuzzy(text, cleaned)
        )

    def _exact(self, text: str, cleaned: str) -> Match | None:
        for v in variants(cleaned):
            if v in self._ambiguous:
                return None
            hit = self._terms.get(v)
            if hit:
                occ, is_name = hit
                method: Method = "exact" if is_name else "synonym"
                return Match.of(occ, text=text, term=v, method=method, score=100.0)
        return None

    def _contains(self, text: str, cleaned: str) -> Match | None:
        taken = [False] * len(cleaned)
        spans: list[tuple[int, str]] = []
        for term in self._by_length:
            if len(term) < 2 or len(term) >= len(cleaned):
                continue
            start = cleaned.find(term)
            while start != -1:
                end = start + len(term)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * len(term)
                    if term in self._terms:
                        spans.append((end, term))
                start = cleaned.find(term, start + 1)
        if not spans:
            return None
        strong = [s for s in spans if s[1] not in _WEAK_HEADS] or spans
        _, head = max(strong)  # the rightmost term is the head of the compound
        occ, _ = self._terms[head]
        score = round(100.0 * len(head) / len(cleaned), 1)
        return Match.of(occ, text=text, term=head, method="contains", score=score)

    def _fuzzy(self, text: str, cleaned: str) -> Match | None:
        query = min(variants(cleaned), key=len)
        if not self.min_len <= len(query) <= FUZZY_MAX_LEN:
            return None
        ranked = self.rank(query, limit=8)
        if not ranked or ranked[0][1] < self.cutoff:
            return None
        (term, score), occ = ranked[0], self._terms[ranked[0][0]][0]
        rival = next((s for t, s in ranked[1:] if self._terms[t][0] is not occ), 0.0)
        if score - rival < self.margin:
            return None
        return Match.of(occ, text=text, term=term, method="fuzzy", score=round(score, 1))

    def rank(self, query: str, *, limit: int) -> list[tuple[str, float]]:
        """The best ``limit`` terms for ``query`` by the fuzzy scorer."""
        hits: Iterable[tuple[Any, ...]] = process.extract(
            query, self._choices, scorer=self.scorer, limit=limit
        )
        return [(str(h[0]), float(h[1])) for h in hits]


@lru_cache(maxsize=1)
def default_normalizer() -> Normalizer:
    return Normalizer()


def normalize(text: str) -> Match | None:
    """The one occupation ``text`` names, or None (unmatched, ambiguous or several)."""
    return default_normalizer().normalize(text)


def normalize_many(skills: list[str]) -> list[Match]:
    """Every occupation named in ``skills`` (lists inside one skill split too), each once,
    in the order found; unmatched skills are left out (they stay as typed)."""
    seen: dict[str, Match] = {}
    for skill in skills:
        for match in default_normalizer().extract(skill):
            seen.setdefault(match.key, match)
    return list(seen.values())


class TaxonomyOccupationMapper:
    """``marketplace.workers.service.OccupationMapper`` over the taxonomy: a worker's
    skills to occupation keys (the taxonomy's stable ids; the national code, where one
    exists, is ``load_taxonomy().get(key).code``)."""

    def __init__(self, normalizer: Normalizer | None = None) -> None:
        self._normalizer = normalizer

    def codes_for(self, skills: list[str]) -> list[str]:
        normalizer = self._normalizer or default_normalizer()
        keys: dict[str, None] = {}
        for skill in skills:
            for match in normalizer.extract(skill):
                keys.setdefault(match.key, None)
        return list(keys)
