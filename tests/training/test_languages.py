"""Text sources per language and the espeak-ng voices added for issue 12 (zh, yue, ja, ko, hi, ar, vi)."""

from __future__ import annotations

import glob
import random
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from training.data import espeak_source
from training.data.corpus import validate_phones
from training.data.jobs import Item
from training.data.texts import (
    LANGUAGES,
    Sentence,
    expand_long_vowels,
    gettext_sentences,
    language_sentences,
    natural_sentence,
)

from audio2face.engines.phonemes import espeak, espeak_phones
from audio2face.engines.phonemes.phoneset import BILABIALS, PHONE_ID, SILENCE

needs_espeak = pytest.mark.skipif(not espeak.available(), reason="libespeak-ng not installed")

NEW_VOICES = {"cmn-latn-pinyin": "zh", "yue": "yue", "ja": "ja", "ko": "ko", "hi": "hi", "ar": "ar", "vi": "vi"}

# Phone-rich sentences in each new espeak language (Mandarin ü-rhymes, Cantonese -ng codas, Japanese kana only).
SAMPLES = {
    "zh": "我们明天早上八点去北京看朋友，然后一起吃饭喝茶。女儿喜欢绿色的鱼和圆圆的月亮。",
    "yue": "我哋聽日朝早八點去香港探朋友，之後一齊食飯飲茶。佢鍾意綠色嘅魚同埋圓月。",
    "ja": "わたしはまいあさパンをたべて、ほんをよみます。ふじさんはとてもきれいでした。",
    "ko": "우리는 내일 아침에 바다에 가서 빵과 사과를 먹을 거예요. 꽃이 피었어요.",
    "hi": "मैं कल सुबह बाज़ार जाऊँगा और ताज़े फल और सब्ज़ियाँ खरीदूँगा।",
    "ar": "ذهب الولد إلى المدرسة صباحا وقرأ كتابا جميلا عن البحر والشمس.",
    "vi": "Tôi muốn ăn phở bò và uống cà phê sữa đá với bạn bè ở Hà Nội.",
}

# The letters a language's sentences may hold (a subset of the source's script tables, written out again).
SCRIPT = {
    "zh": r"[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]",
    "yue": r"[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]",
    "ja": r"[\u3041-\u309f\u30a0-\u30ff]",
    "ko": r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]",
    "hi": r"[\u0900-\u097f]",
    "mr": r"[\u0900-\u097f]",
    "te": r"[\u0c00-\u0c7f]",
    "ar": r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]",
    "ru": r"[\u0400-\u04ff]",
}


def _has_catalogues(lang: str) -> bool:
    return any(glob.glob(f"/usr/share/locale/{loc}/LC_MESSAGES/*.mo") for loc in LANGUAGES[lang].locales)


def test_languages_cover_the_corpus() -> None:
    wanted = {"es", "fr", "de", "it", "pt", "pt_BR", "nl", "pl", "sv", "cs", "ru", "tr", "id", "ro", "hu", "da", "fi"}
    wanted |= {"zh", "yue", "ja", "ko", "hi", "ar", "vi", "mr", "te"}
    assert wanted <= set(LANGUAGES)
    # Every espeak-ng voice has a text language that language_sentences serves.
    assert set(espeak_source.VOICES.values()) <= set(LANGUAGES) | {"en"}
    assert language_sentences("xx") == []


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_language_sentences_are_clean_and_in_script(lang: str) -> None:
    if not _has_catalogues(lang):
        pytest.skip(f"no gettext catalogues for {lang}")
    sents = language_sentences(lang)
    assert len(sents) >= 300, (lang, len(sents))
    assert sents == language_sentences(lang)  # deterministic
    assert len({s.text.lower() for s in sents}) == len(sents)
    letters = re.compile(SCRIPT.get(lang, r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"))
    for s in sents:
        assert isinstance(s, Sentence) and s.lang == lang and s.source == "gettext"
        assert not re.search(r"\d|%|[{}<>/\\@_=|$]|--|https?:", s.text), s.text
        for ch in s.text:
            if unicodedata.category(ch)[0] == "L":
                assert letters.match(ch), (lang, ch, s.text)
    if lang == "ja":  # kana only: no kanji; every sentence has hiragana (a lone katakana word is no sentence)
        assert all(re.search(r"[\u3041-\u3096]", s.text) and "・" not in s.text for s in sents)
    if lang == "vi":  # English words ("file", "perl") are out
        assert not any(re.search(r"\b(file|the|perl|tag)\b", s.text.lower()) for s in sents)


def test_natural_sentence_filters() -> None:
    latin, zh, ja, vi = LANGUAGES["fr"], LANGUAGES["zh"], LANGUAGES["ja"], LANGUAGES["vi"]
    assert (
        natural_sentence("Le fichier est introuvable sur le disque.", latin)
        == "Le fichier est introuvable sur le disque."
    )
    assert (
        natural_sentence("« Le fichier est introuvable sur le disque »", latin)
        == "Le fichier est introuvable sur le disque"
    )
    for bad in (
        "impossible d'ouvrir le fichier %s maintenant",  # format string
        "impossible d'ouvrir /etc/passwd maintenant",  # path
        "v, --verbose affiche plus de détails ici",  # option help
        "version 2 du fichier est introuvable",  # digit
        "le fichier FILE est introuvable ici",  # placeholder
        "fichier introuvable",  # too short
        "Файл не найден на этом диске",  # wrong script
    ):
        assert natural_sentence(bad, latin) is None, bad
    assert natural_sentence("无法打开文件，请稍后再试。", zh) == "无法打开文件，请稍后再试。"
    assert natural_sentence("无法打开 git 文件，请稍后再试。", zh) is None  # Latin inside Hanzi
    assert natural_sentence("ファイルを開けませんでした", ja) is None  # kanji
    assert natural_sentence("ファイルをオープンできません", ja) == "ファイルをオオプンできません"
    assert natural_sentence("パスワード・ヒントのタイムアウト", ja) == "パスワアドヒントのタイムアウト"
    assert natural_sentence("Không thể mở tập tin này được", vi) == "Không thể mở tập tin này được"
    assert natural_sentence("Không thể mở file perl này được", vi) is None


def test_expand_long_vowels() -> None:
    assert expand_long_vowels("オープン") == "オオプン"
    assert expand_long_vowels("コピー、ルール") == "コピイ、ルウル"
    assert expand_long_vowels("ンー") == "ンー"  # no vowel to lengthen: left alone


def test_gettext_sentences_still_work() -> None:
    if not glob.glob("/usr/share/locale/fr/LC_MESSAGES/*.mo"):
        pytest.skip("no French catalogues")
    sents = gettext_sentences("fr", limit=50)
    assert 0 < len(sents) <= 50 and all(s.lang == "fr" and s.source == "gettext" for s in sents)


def test_clip_lang() -> None:
    cases = {"cmn-latn-pinyin": "cmn", "cmn-latn-pinyin+f2": "cmn", "yue+m3": "yue", "ja": "ja", "ko+f1": "ko"}
    cases |= {"pt-br": "pt", "en-us+m3": "en", "es-419": "es", "vi": "vi", "hi": "hi", "ar+f4": "ar"}
    for voice, lang in cases.items():
        assert espeak_source.clip_lang(voice) == lang, voice


def test_language_overrides() -> None:
    assert espeak_source.map_label("y", "vi") == ("IH",)  # ư is unrounded
    assert espeak_source.map_label("y", "fr") == ("UW",)  # French /y/ is rounded
    assert espeak_source.map_label("yə", "vi") == ("IH", "AX")
    assert espeak_source.map_label("yə", "cmn") == ("UW", "AX")
    assert espeak_source.map_label("o-", "cmn") == ("AH",)  # Mandarin e [ɤ]
    assert espeak_source.map_label("o-", "ko") == ("OW",)
    assert espeak_source.map_label("ɟ", "hi") == ("JH",) and espeak_source.map_label("ɟ", "cs") == ("D",)


def test_schwa_is_ax_and_open_mid_central_vowels_stay_ah() -> None:
    """ə is schwa everywhere (Vietnamese ơ/â, English reduced vowels); ʌ and ɐ are
    opener, except that English espeak-ng writes its reduced a as ɐ (session 13)."""
    assert espeak_source.map_label("ə", "vi") == ("AX",)
    assert espeak_source.map_label("ˈəː", "vi") == ("AX",)  # ơ, stressed and long
    assert espeak_source.map_label("ʌ", "en") == ("AH",)  # cup
    assert espeak_source.map_label("ɐ", "en") == ("AX",)  # about
    assert espeak_source.map_label("ɐ", "ko") == ("AH",)  # ㅏ
    assert espeak_source.map_label("ɐ", "pt") == ("AH",)
    assert espeak_source.map_label("eə", "en") == ("EH", "AX")  # centring diphthong


@needs_espeak
def test_the_phoneme_engine_maps_by_the_voices_language_as_the_corpus_does() -> None:
    """espeak-ng reads "about" with its reduced [ɐ]: a schwa in English, where the runtime
    engine used to say AH while the corpus said AX."""
    labels = [p for *_, p in espeak.text_to_phones("about", espeak.SynthOptions(voice="en-us"))]
    assert [p for p in labels if p != SILENCE][:2] == ["AX", "B"]
    assert espeak_source.map_label("ɐ", "en") == espeak_phones.map_label("ɐ", "en") == ("AX",)


def test_phones_from_events_handles_empty_labels() -> None:
    sr = 1000
    audio = np.full(600, 0.3, np.float32)
    audio[300:400] = 0.0  # a real pause
    events = [(0.0, "a"), (0.1, ""), (0.1, "m"), (0.2, "ʲ"), (0.25, "i"), (0.3, ""), (0.4, "a")]
    phones = espeak_source.phones_from_events(events, audio, sr, "ru")
    # "m" keeps its span despite the zero-length event before it; "ʲ" (empty once normalised)
    # sits in speech, so "i" starts there; the silent empty event is SIL.
    assert phones == [(0.0, 0.1, "AA"), (0.1, 0.2, "M"), (0.2, 0.3, "IY"), (0.3, 0.4, SILENCE), (0.4, 0.6, "AA")]


@needs_espeak
def test_mandarin_voice_reads_hanzi() -> None:
    syn = espeak.synthesize("你好", espeak.SynthOptions(voice="cmn-latn-pinyin"))
    spoken = [p for _, _, p in espeak_source.phones_from_events(syn.raw_phones, syn.audio, syn.sample_rate, "cmn")]
    assert [p for p in spoken if p != SILENCE] == ["N", "IY", "HH", "AW"]  # ni hao, not "Chinese letter"
    assert not any("(" in label for _, label in syn.raw_phones)  # no switch to English


@needs_espeak
@pytest.mark.parametrize("voice", sorted(NEW_VOICES))
def test_every_phone_of_new_languages_is_mapped(voice: str) -> None:
    lang = NEW_VOICES[voice]
    texts = [SAMPLES[lang]]
    if _has_catalogues(lang):
        sents = language_sentences(lang)
        texts += [s.text for s in random.Random(12).sample(sents, min(60, len(sents)))]
    switched = 0
    for text in texts:
        syn = espeak.synthesize(text, espeak.SynthOptions(voice=voice))
        switched += any("(" in label for _, label in syn.raw_phones)
        for _, label in syn.raw_phones:
            mapped = espeak_source.map_label(label, espeak_source.clip_lang(voice), strict=True)
            assert all(p in PHONE_ID for p in mapped), (label, mapped)
    # Sentences stay in the language (a switch to English reads "Chinese letter" etc.).
    assert switched <= len(texts) // 20, switched


@needs_espeak
@pytest.mark.parametrize("voice", sorted(NEW_VOICES))
def test_render_new_language(voice: str, tmp_path: Path) -> None:
    lang = NEW_VOICES[voice]
    item = Item(f"t-{lang}", "train", SAMPLES[lang], lang, "test", f"{voice}+f2", 0.2, 0.3, 0.8,
                (("rate", 170), ("pitch", 60), ("range", 50)))  # fmt: skip
    rec = espeak_source.render(item, tmp_path)
    assert rec["lang"] == espeak_source.clip_lang(voice)
    phones = [tuple(p) for p in rec["phones"]]  # type: ignore[union-attr]
    validate_phones(phones, float(rec["duration"]))  # type: ignore[arg-type]
    labels = [p for _, _, p in phones]
    assert any(p in BILABIALS for p in labels)  # every sample has m, b or p
    speech = sum(e - s for s, e, p in phones if p != SILENCE)
    assert speech > 0.6 * (float(rec["duration"]) - 0.5)  # type: ignore[arg-type]
