"""Turn a size budget into a deterministic list of jobs (no audio is made here).

Budget shares (of the training hours; held-out is ``heldout_fraction`` on top):

* asterisk-en: every prompt that can be aligned (~20 min of real speech),
* asterisk-es: up to 10 min, unlabelled,
* festival: 22 %, shared evenly by the training voices (11 voices, 8 languages),
* flite: 8 %, shared by its training voices (awb, kal),
* espeak-ng: the rest, 40 % English voices and 60 % spread over other languages.

Held-out audio (``heldout_fraction`` of the training hours on top, plus
``heldout_voice_minutes`` for every voice held out whole):

* every held-out whole voice (festival, flite, espeak-ng base voices, which include
  the two held-out languages) reads ``heldout_voice_minutes`` of sentences: it has
  never been heard, so its sentences may be training ones;
* training voices of every source read a share of the held-out sentences;
* espeak-ng's held-out variants (``+f4``, ``+m6``) on training bases.

Validation audio (kept out of training, used to choose a model; see ``split.py``):
every validation whole voice (festival ``czech_krb``, espeak-ng ``id``) reads
``validation_voice_minutes``; training voices of every source read the validation
sentences (``validation_fraction`` of the training hours on top, shared like the
held-out hours); Asterisk prompts in the validation bucket.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

from training.data import asterisk_source, espeak_source, festival_source, flite_source
from training.data.debian import TextFiles
from training.data.jobs import Item, Job
from training.data.split import SplitPolicy
from training.data.texts import (
    Sentence,
    asterisk_transcripts,
    cmudict_sentences,
    corpus_origins,
    corpus_sentences,
    english_prose,
)

__all__ = ["PlanOptions", "make_plan", "text_origins"]
log = logging.getLogger(__name__)

_GSM_BYTES_PER_S = 1650.0  # 33-byte frames of 20 ms


@dataclass(frozen=True)
class PlanOptions:
    """What to plan. ``hours`` is training audio; ``small`` caps everything for a smoke run."""

    hours: float = 3.0
    heldout_fraction: float = 0.06
    festival_share: float = 0.22
    flite_share: float = 0.08
    english_share: float = 0.40
    validation_fraction: float = 0.04
    """Hours of validation sentences read by training voices, as a fraction of the training hours."""
    validation_voice_minutes: float = 3.0
    es_minutes: float = 10.0
    heldout_voice_minutes: float = 3.0
    small: bool = False
    use_festival: bool = True
    use_flite: bool = True
    use_asterisk: bool = True
    festival_voices: tuple[str, ...] = ()
    """Installed festival voices to use (the builder fills this in; empty: none)."""
    flite_voices: tuple[str, ...] = ()
    """Installed flite voices to use (the builder fills this in; empty: none)."""
    text_files: tuple[str, ...] | None = None
    """The only files the text sources may read (a text lock's); None: every installed
    package's, which makes the text depend on what else the machine carries."""
    split: SplitPolicy = SplitPolicy()

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise ValueError(f"hours must be positive, got {self.hours}")
        if self.heldout_voice_minutes < 0:
            raise ValueError(f"heldout_voice_minutes must be >= 0, got {self.heldout_voice_minutes}")


@dataclass
class _Pools:
    """Sentences per text language, split into train and held-out by sentence."""

    train: dict[str, list[Sentence]]
    heldout: dict[str, list[Sentence]]
    validation: dict[str, list[Sentence]]


def _pools(langs: set[str], split: SplitPolicy, seed: int, files: TextFiles) -> _Pools:
    train: dict[str, list[Sentence]] = {}
    heldout: dict[str, list[Sentence]] = {}
    validation: dict[str, list[Sentence]] = {}
    pools = {"train": train, "heldout": heldout, "validation": validation}
    for lang in sorted(langs):
        sents = english_prose(files=files) + cmudict_sentences(3000, seed) if lang == "en" else corpus_sentences(lang, files)
        for pool in pools.values():
            pool[lang] = []
        for s in sents:
            pools[split.sentence_split(s.text)][lang].append(s)
        # Prompts held out (or kept for validation) as recordings are held out as sentences too, for every source.
        for name, text in asterisk_transcripts(lang).items():
            sent = Sentence(text, lang, f"asterisk-{lang} transcript")
            pools[_asterisk_split(split, name, text)][lang].append(sent)
    return _Pools(train, heldout, validation)


def _text_files(opts: PlanOptions) -> TextFiles:
    return TextFiles(None if opts.text_files is None else frozenset(opts.text_files))


def _languages(opts: PlanOptions) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Festival and flite voices to use (voice -> text language), and every text language."""
    fest = {v: festival_source.VOICES[v].lang for v in opts.festival_voices} if opts.use_festival else {}
    flite = {f"flite-{v}": flite_source.VOICES[v].lang for v in opts.flite_voices} if opts.use_flite else {}
    return fest, flite, set(espeak_source.VOICES.values()) | set(fest.values()) | set(flite.values())


def text_origins(opts: PlanOptions) -> set[str]:
    """The files :func:`make_plan`'s sentences depend on for ``opts``: reading only these
    (a lock of their packages) plans the same jobs."""
    _, _, langs = _languages(opts)
    files = _text_files(opts)
    return set().union(*(corpus_origins(lang, files) for lang in sorted(langs)))


def _asterisk_split(split: SplitPolicy, name: str, text: str) -> str:
    """``heldout``, ``validation`` or ``train`` for one Asterisk prompt. Keyed by its
    text, not its file name: several prompts share a transcript and must share a split."""
    del name
    key = text.lower().strip()
    if split.file_heldout(key) or split.sentence_heldout(text):
        return "heldout"
    if split.file_validation(key) or split.sentence_validation(text):
        return "validation"
    return "train"


def _join(sentences: list[Sentence]) -> tuple[str, str]:
    texts = [s.text if s.text[-1] in ".!?" else s.text + "." for s in sentences]
    sources = sorted({s.source for s in sentences})
    return " ".join(texts), "+".join(sources)


def _pad_params(rng: random.Random) -> tuple[float, float, float]:
    return round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(0.3, 0.95), 3)


def _espeak_items(
    rng: random.Random, pools: _Pools, opts: PlanOptions, budget: float, split_name: str, mode: str, start: int,
    bases: list[str] | None = None,
) -> list[Item]:  # fmt: skip
    """mode: 'train', 'voice' (held-out voices, train sentences), 'sentence' (held-out sentences),
    'val_voice' (validation voices, train sentences) or 'val_sentence' (training voices, validation
    sentences). ``bases`` limits the base voices drawn from (default: all)."""
    policy = opts.split
    bases = bases or list(espeak_source.VOICES)
    english = [v for v in bases if espeak_source.VOICES[v] == "en"] or bases
    foreign = [v for v in bases if espeak_source.VOICES[v] != "en"] or bases
    items: list[Item] = []
    used = 0.0
    tries = 0
    while used < budget:
        tries += 1
        if tries > 100_000 and not items:
            raise RuntimeError(f"no espeak voice fits mode {mode!r} among {bases}")
        base = rng.choice(english if rng.random() < opts.english_share else foreign)
        variant = rng.choice(espeak_source.VARIANTS)
        voice = f"{base}+{variant}" if variant else base
        wanted = {"voice": "heldout", "val_voice": "validation"}.get(mode, "train")
        if policy.voice_split(voice) != wanted:
            continue
        lang = espeak_source.VOICES[base]
        pool = {"sentence": pools.heldout, "val_sentence": pools.validation}.get(mode, pools.train).get(lang) or []
        if not pool:
            continue
        text, text_source = _join(rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 3)))))
        rate = rng.randint(120, 240)
        lead, trail, peak = _pad_params(rng)
        params = (("rate", rate), ("pitch", rng.randint(25, 80)), ("range", rng.randint(20, 90)))
        items.append(Item(f"espeak-{start + len(items):06d}", split_name, text, lang, text_source, voice,
                          lead, trail, peak, params))  # fmt: skip
        used += espeak_source.estimate_seconds(text, rate) + lead + trail
    return items


def _synth_items(rng: random.Random, source: str, voice: str, lang: str, pool: list[Sentence],
                 budget: float, split_name: str, start: int) -> list[Item]:  # fmt: skip
    """Items for one festival or flite voice reading ``budget`` seconds of ``pool``."""
    items: list[Item] = []
    used = 0.0
    while used < budget and pool:
        text, text_source = _join(rng.sample(pool, min(len(pool), rng.choice((1, 1, 2)))))
        stretch = rng.uniform(0.85, 1.3)
        lead, trail, peak = _pad_params(rng)
        params = (("stretch", stretch), ("f0", rng.uniform(85, 150)), ("f0_std", rng.uniform(8, 25)))
        items.append(Item(f"{source}-{split_name}-{start + len(items):05d}", split_name, text, lang, text_source,
                          voice, lead, trail, peak, params))  # fmt: skip
        used += len(text) * 0.07 * stretch + lead + trail
    return items


def _voice_items(rng: random.Random, pools: _Pools, opts: PlanOptions, source: str,
                 voices: dict[str, str], share: float) -> list[Item]:  # fmt: skip
    """festival or flite: ``voices`` maps the corpus voice name to its language.

    Training voices share ``share`` of the hours and read held-out sentences in the
    held-out split; held-out voices read ``heldout_voice_minutes`` each."""
    total, held = opts.hours * 3600.0, opts.hours * 3600.0 * opts.heldout_fraction
    policy = opts.split
    val = opts.hours * 3600.0 * opts.validation_fraction
    training = sorted(v for v in voices if policy.voice_split(v) == "train")
    items: list[Item] = []
    for voice in sorted(voices):
        lang = voices[voice]
        whole = policy.voice_split(voice)
        if whole == "heldout":
            pool = pools.train.get(lang, []) + pools.heldout.get(lang, [])
            items += _synth_items(rng, source, voice, lang, pool, opts.heldout_voice_minutes * 60.0, "heldout",
                                  len(items))  # fmt: skip
            continue
        if whole == "validation":
            pool = pools.train.get(lang, []) + pools.validation.get(lang, [])
            items += _synth_items(rng, source, voice, lang, pool, opts.validation_voice_minutes * 60.0,
                                  "validation", len(items))  # fmt: skip
            continue
        share_s = total * share / max(len(training), 1)
        items += _synth_items(rng, source, voice, lang, pools.train.get(lang, []), share_s, "train", len(items))
        items += _synth_items(rng, source, voice, lang, pools.heldout.get(lang, []),
                              held * share / max(len(training), 1), "heldout", len(items))  # fmt: skip
        items += _synth_items(rng, source, voice, lang, pools.validation.get(lang, []),
                              val * share / max(len(training), 1), "validation", len(items))  # fmt: skip
    return items


def _batches(source: str, items: list[Item], size: int) -> list[Job]:
    """Jobs of at most ``size`` items, one voice per job (a batch selects its voice once)."""
    jobs: list[Job] = []
    for voice in sorted({i.voice for i in items}):
        mine = [i for i in items if i.voice == voice]
        jobs += [Job(source, tuple(mine[k : k + size])) for k in range(0, len(mine), size)]
    return jobs


def _asterisk_items(rng: random.Random, opts: PlanOptions, lang: str, cap_s: float) -> list[Item]:
    if not asterisk_source.available(lang):
        log.warning("asterisk-%s: no sounds or no sox; the corpus has no recorded speech in %s "
                    "(apt-get install sox asterisk-core-sounds-%s-gsm)", lang, lang, lang)
        return []
    # Transcripts are keyed by prompt name; the pools use the same names.
    found = asterisk_source.prompts(lang, asterisk_transcripts(lang))
    if not found:
        # The plain package ships WAV or nothing; the GSM files the source reads are in -gsm.
        log.warning("asterisk-%s: no GSM prompts with a transcript under %s; apt-get install "
                    "asterisk-core-sounds-%s asterisk-core-sounds-%s-gsm", lang,
                    asterisk_source.SOUNDS[lang], lang, lang)
    items: list[Item] = []
    used = 0.0
    for key, name, path, text in found:
        if used >= cap_s:
            break
        split_name = _asterisk_split(opts.split, key, text)
        lead, trail, peak = _pad_params(rng)
        safe = name.replace("/", "_")
        items.append(Item(f"asterisk-{lang}-{safe}", split_name, text, lang, "", "allison", lead, trail, peak,
                          path=str(path)))  # fmt: skip
        used += Path(path).stat().st_size / _GSM_BYTES_PER_S + lead + trail
    return items


def make_plan(opts: PlanOptions) -> list[Job]:
    """Deterministic job list for the given options (same options, same jobs)."""
    rng = random.Random(opts.split.seed)
    total = opts.hours * 3600.0
    held = total * opts.heldout_fraction
    fest, flite, langs = _languages(opts)
    pools = _pools(langs, opts.split, opts.split.seed, _text_files(opts))
    jobs: list[Job] = []
    recorded = 0.0
    if opts.use_asterisk:
        en = _asterisk_items(rng, opts, "en", 60.0 if opts.small else float("inf"))
        es = _asterisk_items(rng, opts, "es", 30.0 if opts.small else opts.es_minutes * 60.0)
        jobs += [Job("asterisk-en", tuple(en[i : i + 8])) for i in range(0, len(en), 8)]
        jobs += [Job("asterisk-es", tuple(es[i : i + 16])) for i in range(0, len(es), 16)]
        # Aligned English counts against the training budget (about 80 % align).
        recorded = 0.8 * sum(Path(i.path).stat().st_size / _GSM_BYTES_PER_S for i in en if i.split == "train")
    shares = 0.0
    if fest:
        jobs += _batches("festival", _voice_items(rng, pools, opts, "festival", fest, opts.festival_share), 20)
        shares += opts.festival_share
    if flite:
        items_f = _voice_items(rng, pools, opts, "flite", flite, opts.flite_share)
        # flite renders one item per call; its Item.voice is flite_source's key ("awb").
        items_f = [replace(i, voice=i.voice.removeprefix("flite-")) for i in items_f]
        jobs += _batches("flite", items_f, 16)
        shares += opts.flite_share
    espeak_budget = max(total * (1 - shares) - recorded, 0.0)
    items = _espeak_items(rng, pools, opts, espeak_budget, "train", "train", 0)
    # Every held-out base voice (and so every held-out language) gets its own minutes.
    for base in sorted(b for b in espeak_source.VOICES if b in opts.split.heldout_base_voices):
        items += _espeak_items(rng, pools, opts, opts.heldout_voice_minutes * 60.0, "heldout", "voice",
                               len(items), bases=[base])  # fmt: skip
    items += _espeak_items(rng, pools, opts, held * 0.3, "heldout", "voice", len(items))
    items += _espeak_items(rng, pools, opts, held * 0.4, "heldout", "sentence", len(items))
    # Validation: every validation base voice (language) whole, and validation sentences on training voices.
    val = total * opts.validation_fraction
    for base in sorted(b for b in espeak_source.VOICES if b in opts.split.validation_base_voices):
        items += _espeak_items(rng, pools, opts, opts.validation_voice_minutes * 60.0, "validation", "val_voice",
                               len(items), bases=[base])  # fmt: skip
    items += _espeak_items(rng, pools, opts, val * 0.7, "validation", "val_sentence", len(items))
    jobs += [Job("espeak", tuple(items[i : i + 16])) for i in range(0, len(items), 16)]
    return jobs
