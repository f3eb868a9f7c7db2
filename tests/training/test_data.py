"""Training-data pipeline: espeak wrapper, phone mapping, augmentations, split."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_languages import SAMPLES as ISSUE12_SAMPLES
from training.data.corpus import SAMPLE_RATE, pad, validate_phones
from training.data.espeak_source import VOICES
from training.data.split import SplitPolicy

from audio2face.engines.phonemes import espeak
from audio2face.engines.phonemes.espeak_phones import ipa_to_unified, normalize_ipa, tile_phones
from audio2face.engines.phonemes.phoneset import PHONE_ID, SILENCE
from training import augment

needs_espeak = pytest.mark.skipif(not espeak.available(), reason="libespeak-ng not installed")

# One short sentence per text language of the corpus, to exercise each voice's phones.
SAMPLES = {
    "en": "The quick brown fox jumps over the lazy dog, and we all went home happy.",
    "es": "El perro corre rápido por la calle y la niña mira la luna llena.",
    "fr": "Bonjour, tu veux un peu de pain avec du beurre et une pomme rouge?",
    "de": "Ich möchte heute Abend mit meinen Freunden über die Brücke gehen.",
    "it": "Gli amici mangiano la pizza e bevono un bicchiere di vino rosso.",
    "pt": "O pão está quente e as crianças brincam no jardim da avó.",
    "pt_BR": "Não sei onde ficou a chave, mas vou procurar amanhã cedo.",
    "nl": "Het meisje fietst snel naar huis omdat het begint te regenen.",
    "pl": "Szczęśliwy chłopiec je żółty ser i pije ciepłą herbatę.",
    "sv": "Sju sjösjuka sjömän sköttes av sju sköna sjuksköterskor.",
    "cs": "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "ru": "Съешь же ещё этих мягких французских булок да выпей чаю.",
    "tr": "Pijamalı hasta yağız şoföre çabucak güvendi.",
    "id": "Saya suka makan nasi goreng dengan telur dan sambal pedas.",
    "ro": "Băiatul mănâncă o pâine caldă și bea un pahar cu lapte.",
    "hu": "Árvíztűrő tükörfúrógép, a kutya ugat és a macska nyávog.",
    "da": "Den lille pige løber hurtigt hjem gennem den grønne skov.",
    "fi": "Hyvää huomenta, mökillä on lämmin sauna ja kylmä järvi.",
    # Issue 12 languages: the phone-rich sentences tests/training/test_languages.py uses.
    **ISSUE12_SAMPLES,
}


def _assert_tiles(phones: list[tuple[float, float, str]], duration: float) -> None:
    validate_phones(phones, duration)
    assert all(p in PHONE_ID for _, _, p in phones)


@needs_espeak
def test_espeak_map_has_bilabial_and_open_vowel() -> None:
    syn = espeak.synthesize("map")
    assert (
        syn.sample_rate > 8000 and syn.audio.dtype == np.float32 and np.abs(syn.audio).max() > 0.01
    )
    _assert_tiles(syn.phones, syn.duration)
    labels = [p for _, _, p in syn.phones if p != SILENCE]
    assert labels == ["M", "AE", "P"]


@needs_espeak
def test_espeak_options_and_text_to_phones() -> None:
    slow = espeak.synthesize(
        "hello there", espeak.SynthOptions(voice="en-us+f3", rate=100, pitch=80)
    )
    fast = espeak.synthesize(
        "hello there", espeak.SynthOptions(voice="en-us+m3", rate=300, pitch=20)
    )
    assert slow.duration > fast.duration * 1.5
    phones = espeak.text_to_phones("hello there")
    assert [p for *_, p in phones if p != SILENCE][:2] == ["HH", "AX"]  # h[ə]llo: schwa
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        espeak.synthesize("x", espeak.SynthOptions(voice="no-such-voice"))
    with pytest.raises(ValueError, match="rate"):
        espeak.SynthOptions(rate=10)


@needs_espeak
@pytest.mark.parametrize("voice", sorted(VOICES))
def test_every_espeak_phone_is_mapped(voice: str) -> None:
    syn = espeak.synthesize(SAMPLES[VOICES[voice]], espeak.SynthOptions(voice=voice))
    for _, label in syn.raw_phones:
        mapped = ipa_to_unified(label, strict=True)  # raises UnmappedPhoneError if missing
        assert all(p in PHONE_ID for p in mapped), (label, mapped)
    _assert_tiles(syn.phones, syn.duration)


def test_ipa_normalisation() -> None:
    assert normalize_ipa("ˈaː") == "a"
    assert ipa_to_unified("(en)") == (SILENCE,)
    assert ipa_to_unified("y") == ("UW",)  # French /y/: rounded, so UW by mouth shape
    assert ipa_to_unified("aɪ") == ("AY",)
    assert ipa_to_unified("ts") == ("T", "S")


def test_tile_phones_splits_diphthongs_and_fills_gaps() -> None:
    spans = tile_phones([(0.1, ("T", "S")), (0.3, ("AA",))], 0.5)
    assert spans == [(0.0, 0.1, SILENCE), (0.1, 0.2, "T"), (0.2, 0.3, "S"), (0.3, 0.5, "AA")]


def test_pad_keeps_tiling() -> None:
    audio = np.ones(SAMPLE_RATE, np.float32) * 0.1
    out, phones = pad(audio, [(0.0, 0.5, "M"), (0.5, 1.0, "AA")], 0.25, 0.5)
    assert phones is not None
    assert len(out) == int(1.75 * SAMPLE_RATE)
    validate_phones(phones, 1.75)
    assert phones[0] == (0.0, 0.25, SILENCE) and phones[-1] == (1.25, 1.75, SILENCE)


def test_augment_speed_scales_timings() -> None:
    rng = np.random.default_rng(0)
    audio = augment.white_noise(SAMPLE_RATE * 2, rng) * 0.1
    phones = [(0.0, 0.5, SILENCE), (0.5, 1.2, "AA"), (1.2, 2.0, "M")]
    out, scaled = augment.speed(audio, 1.25, phones)
    assert scaled is not None
    assert abs(len(out) / SAMPLE_RATE - 1.6) < 0.01
    assert scaled[1] == pytest.approx((0.4, 0.96, "AA"))
    validate_phones(scaled, len(out) / SAMPLE_RATE)
    slow, _ = augment.speed(audio, 0.8)
    assert abs(len(slow) / SAMPLE_RATE - 2.5) < 0.01


def test_augmentations_are_pure_and_seeded() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    before = audio.copy()
    outs = [
        augment.add_noise(audio, augment.pink_noise(len(audio), rng), 10.0),
        augment.reverb(audio, np.random.default_rng(2)),
        augment.band_limit(audio),
        augment.mu_law_roundtrip(audio),
        augment.pitch_shift(audio, 3.0),
        augment.gain(audio, -6.0),
        augment.add_noise(
            audio, augment.babble_noise([audio, audio[::-1].copy()], len(audio), rng), 5.0
        ),
        augment.add_noise(audio, augment.music_background(len(audio), rng), 15.0),
    ]
    np.testing.assert_array_equal(audio, before)
    for out in outs:
        assert out.dtype == np.float32 and out.shape == audio.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(augment.reverb(audio, np.random.default_rng(2)), outs[1])
    noisy = augment.add_noise(audio, augment.white_noise(len(audio), rng), 0.0)
    assert np.std(noisy - audio) == pytest.approx(np.std(audio), rel=0.05)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_gsm_roundtrip() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    out = augment.gsm_roundtrip(audio)
    assert out.shape == audio.shape and np.corrcoef(audio[800:-800], out[800:-800])[0, 1] > 0.5


def test_pad_silence_extends_edge_silence() -> None:
    audio = np.zeros(SAMPLE_RATE, np.float32)
    out, phones = augment.pad_silence(audio, 0.5, 0.25, [(0.0, 0.2, SILENCE), (0.2, 1.0, "B")])
    assert phones == [(0.0, 0.7, SILENCE), (0.7, 1.5, "B"), (1.5, 1.75, SILENCE)]
    assert len(out) == int(1.75 * SAMPLE_RATE)


def test_split_policy_is_deterministic_and_disjoint() -> None:
    policy = SplitPolicy(seed=7)
    sentences = [f"sentence number {i} about maps and boots" for i in range(2000)]
    held = {s for s in sentences if policy.sentence_heldout(s)}
    assert 0.02 < len(held) / len(sentences) < 0.09
    assert held == {s for s in sentences if SplitPolicy(seed=7).sentence_heldout(s)}
    assert policy.sentence_heldout("Hello, World!") == policy.sentence_heldout("hello world")
    assert policy.voice_heldout("en-gb-scotland") and policy.voice_heldout("en-us+f4")
    assert not policy.voice_heldout("en-us+f1")


WORDS = ("maps", "boots", "river", "lamp", "quiet", "yellow", "seven", "garden", "tables",
         "morning", "bridge", "pepper", "window", "forest", "coffee", "silver")  # fmt: skip


def small_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the text sources the plan reads (installed docs, gettext catalogues,
    cmudict: seconds of parsing) by a few hundred sentences per language. The plan's
    split logic is what is under test, not the corpus readers. The sentences include
    case and punctuation variants of each other, which the split must keep together."""
    from training.data import plan

    def sentences(lang: str, n: int, tag: str) -> list:
        rng = np.random.default_rng(zlib.crc32(f"{lang}:{tag}".encode()))  # stable across runs
        out = []
        for i in range(n):
            words = " ".join(rng.choice(WORDS, size=5))
            text = f"The {tag} {i} {words}" if i % 7 else f"the, {tag} {i} {words.upper()}!"
            out.append(plan.Sentence(text + ".", lang, f"test-{tag}"))
        return out

    monkeypatch.setattr(plan, "english_prose", lambda files: sentences("en", 300, "prose"))
    monkeypatch.setattr(plan, "cmudict_sentences", lambda n, seed: sentences("en", 200, "cmu"))
    monkeypatch.setattr(plan, "corpus_sentences", lambda lang, files: sentences(lang, 300, "po"))
    monkeypatch.setattr(plan, "asterisk_transcripts",
                        lambda lang: {f"p{i}": f"Please say the number {WORDS[i]} now"
                                      for i in range(len(WORDS))} if lang == "en" else {})  # fmt: skip


def test_plan_heldout_is_disjoint_from_train(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.data.plan import PlanOptions, make_plan

    small_corpus(monkeypatch)
    opts = PlanOptions(hours=0.05, heldout_fraction=0.3, small=True, use_asterisk=False,
                       use_festival=False)  # fmt: skip
    jobs = make_plan(opts)
    items = [i for j in jobs for i in j.items]
    train = [i for i in items if i.split == "train"]
    held = [i for i in items if i.split == "heldout"]
    assert train and held
    policy = opts.split
    # both kinds of held-out audio are planned: unseen voices and unseen sentences
    assert any(policy.voice_heldout(i.voice) for i in held)
    assert any(policy.sentence_heldout(s) for i in held for s in i.text.split(". "))
    assert not any(policy.voice_heldout(i.voice) for i in train)
    assert not any(policy.sentence_heldout(s) for i in train for s in i.text.split(". "))
    assert {i.text for i in train}.isdisjoint(
        {i.text for i in held if policy.sentence_heldout(i.text)}
    )
    # deterministic: the same options give the same plan
    assert [i.id for i in items] == [i.id for j in make_plan(opts) for i in j.items]


def test_plan_holds_out_whole_voices_of_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12's split: held-out festival/flite voices and espeak languages appear only in
    held-out, each with its own minutes; training voices read held-out sentences there."""
    from training.data import espeak_source, festival_source, flite_source
    from training.data.plan import PlanOptions, make_plan

    small_corpus(monkeypatch)
    opts = PlanOptions(hours=0.2, heldout_fraction=0.1, use_asterisk=False, heldout_voice_minutes=0.5,
                       festival_voices=tuple(festival_source.VOICES), flite_voices=tuple(flite_source.VOICES))  # fmt: skip
    items = [(j.source, i) for j in make_plan(opts) for i in j.items]
    policy = opts.split

    def corpus_voice(source: str, voice: str) -> str:
        return f"flite-{voice}" if source == "flite" else voice

    held_voices = {corpus_voice(s, i.voice) for s, i in items if i.split == "heldout"}
    train_voices = {corpus_voice(s, i.voice) for s, i in items if i.split == "train"}
    for voice in policy.heldout_voices:
        assert voice in held_voices and voice not in train_voices, voice
        seconds = sum(len(i.text) * 0.07 for s, i in items if corpus_voice(s, i.voice) == voice)
        assert seconds >= 0.3 * 60, (voice, seconds)  # about heldout_voice_minutes of speech
    for lang in ("ko", "vi"):  # held-out espeak languages
        assert any(i.voice.partition("+")[0] == lang for _, i in items if i.split == "heldout")
        assert not any(i.voice.partition("+")[0] == lang for _, i in items if i.split == "train")
    assert not any(policy.voice_heldout(corpus_voice(s, i.voice)) for s, i in items if i.split == "train")
    # trained festival voices also read held-out sentences (unseen sentences, seen voice)
    for voice in ("kal_diphone", "pc_diphone", "czech_ph", "msu_ru_nsh_clunits"):  # czech_krb: validation
        assert voice in train_voices
        assert any(i.split == "heldout" and i.voice == voice for _, i in items)
    # a festival batch selects one voice once: jobs never mix voices
    assert all(len({i.voice for i in j.items}) == 1 for j in make_plan(opts) if j.source == "festival")
    # every new espeak language is planned
    planned = {i.voice.partition("+")[0] for s, i in items if s == "espeak"}
    assert {"cmn-latn-pinyin", "yue", "ja", "hi", "ar"} <= planned <= set(espeak_source.VOICES)


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival not installed")
def test_festival_batch(tmp_path: Path) -> None:
    from training.data import festival_source
    from training.data.jobs import Item

    if not festival_source.available():
        pytest.skip("voice_kal_diphone not installed")
    item = Item("f-1", "train", "Put the map on the boot.", "en", "test", "kal_diphone", 0.2, 0.3, 0.8,
                (("stretch", 1.0), ("f0", 105.0), ("f0_std", 14.0)))  # fmt: skip
    (rec,) = festival_source.render_batch((item,), tmp_path)
    labels = [p for _, _, p in rec["phones"]]  # type: ignore[union-attr]
    assert {"M", "P", "B", "UW"} <= set(labels)
    assert (tmp_path / "train" / "f-1.wav").exists()


def test_asterisk_alignment(tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    from training.data import asterisk_source
    from training.data.jobs import Item

    path = asterisk_source.SOUNDS["en"] / "agent-pass.gsm"
    if not path.exists() or shutil.which("sox") is None:
        pytest.skip("asterisk-core-sounds-en or sox not installed")
    text = "Please enter your password followed by the pound key."
    item = Item("a-1", "train", text, "en", "", "allison", 0.3, 0.3, 0.8, path=str(path))
    rec = asterisk_source.render(item, tmp_path, "en")
    assert rec is not None
    labels = [p for _, _, p in rec["phones"]]  # type: ignore[union-attr]
    assert labels[0] == SILENCE and labels[-1] == SILENCE and "P" in labels and "AW" in labels
    assert "AX" in labels and "AH" not in labels  # "the" is read with a schwa


@needs_espeak
def test_asterisk_schwas_follow_espeak_ngs_reading() -> None:
    """The dictionary's AH is schwa (AX) where espeak-ng's en-us reading of the word has
    one in that vowel slot, /ʌ/ (AH) where it has /ʌ/; a word whose readings have
    different numbers of vowels keeps its AH (no pocketsphinx needed: only espeak-ng)."""
    from training.data.asterisk_source import mark_schwas

    assert mark_schwas("number", ["N", "AH", "M", "B", "ER"]) == ["N", "AH", "M", "B", "ER"]
    assert mark_schwas("about", ["AH", "B", "AW", "T"]) == ["AX", "B", "AW", "T"]
    assert mark_schwas("the(2)", ["DH", "AH"]) == ["DH", "AX"]
    assert mark_schwas("announcement", ["AH", "N", "AW", "N", "S", "M", "AH", "N", "T"]) == (
        ["AX", "N", "AW", "N", "S", "M", "AX", "N", "T"]
    )
    assert mark_schwas("conference", ["K", "AA", "N", "F", "ER", "AH", "N", "S"])[5] == "AH"  # 3 vowels against 2
    assert mark_schwas("<sil>", ["SIL"]) == ["SIL"]


def test_asterisk_decoding_repeats() -> None:
    """sox dithers by default with clock-seeded noise, which moved pocketsphinx's alignment of
    most prompts between two builds; decoding the same file twice gives the same samples."""
    from training.data import asterisk_source

    path = asterisk_source.SOUNDS["en"] / "agent-pass.gsm"
    if not path.exists() or shutil.which("sox") is None:
        pytest.skip("asterisk-core-sounds-en or sox not installed")
    first, again = asterisk_source.decode_gsm(path), asterisk_source.decode_gsm(path)
    assert first.size > 8000 and np.array_equal(first, again)


def test_asterisk_transcripts_read_as_spoken() -> None:
    """Single digits are spelled out, misspellings corrected, and words the dictionary
    lacks are known; numbers of several digits (read one way or another) are refused."""
    pytest.importorskip("pocketsphinx")
    from training.data.asterisk_source import align_words

    assert align_words("press 0 for help") == "press zero for help"
    assert align_words("Press 1 to mute or umute yourself, 2 to lock.") == (
        "press one to mute or unmute yourself two to lock"
    )
    assert align_words("Use the 7 key for Q, and the 9 key for Z.") == (
        "use the seven key for q and the nine key for z"
    )
    assert align_words("the PBX is unmuted") == "the pbx is unmuted"
    # Notes about the recording are not words in it.
    assert align_words('IAX (note: does not say "2")') == "iax"
    assert align_words("after the tone. (simple tone sound plays)") == "after the tone"
    for refused in ("dial 500 now", "a 28.8 kilobit modem", "3D audio disabled", "zorblax",
                    "(1 second of silence)", "<beep ascending>"):
        assert align_words(refused) is None, refused


def test_asterisk_alignment_of_a_recovered_prompt(tmp_path: Path) -> None:
    """A prompt earlier builds skipped (a digit): "press 0 to reach an operator"."""
    pytest.importorskip("pocketsphinx")
    from training.data import asterisk_source
    from training.data.jobs import Item

    path = asterisk_source.SOUNDS["en"] / "vm-reachoper.gsm"
    if not path.exists() or shutil.which("sox") is None:
        pytest.skip("asterisk-core-sounds-en or sox not installed")
    item = Item("a-2", "train", "press 0 to reach an operator", "en", "", "allison", 0.3, 0.3, 0.8,
                path=str(path))  # fmt: skip
    rec = asterisk_source.render(item, tmp_path, "en")
    assert rec is not None
    labels = [p for _, _, p in rec["phones"]]  # type: ignore[union-attr]
    words = " ".join(labels)
    assert "Z IY R OW" in words and "AA P ER EY T ER" in words
