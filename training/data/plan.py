"""Turn a size budget into a deterministic list of jobs (no audio is made here).

Budget shares (of the training hours; held-out is ``heldout_fraction`` on top):

* asterisk-en: every prompt that can be aligned (~20 min of real speech),
* asterisk-es: up to 10 min, unlabelled,
* festival kal: 12 %,
* espeak-ng: the rest, 45 % English voices and 55 % spread over other languages.

Held-out espeak audio is half unseen voices (held-out base voices or variants
reading training sentences) and half unseen sentences read by training voices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from training.data import asterisk_source, espeak_source
from training.data.jobs import Item, Job
from training.data.split import SplitPolicy
from training.data.texts import (
    Sentence,
    asterisk_transcripts,
    cmudict_sentences,
    english_prose,
    gettext_sentences,
)

__all__ = ["PlanOptions", "make_plan"]

_GSM_BYTES_PER_S = 1650.0  # 33-byte frames of 20 ms


@dataclass(frozen=True)
class PlanOptions:
    """What to plan. ``hours`` is training audio; ``small`` caps everything for a smoke run."""

    hours: float = 2.5
    heldout_fraction: float = 0.06
    festival_share: float = 0.12
    english_share: float = 0.45
    es_minutes: float = 10.0
    small: bool = False
    use_festival: bool = True
    use_asterisk: bool = True
    split: SplitPolicy = SplitPolicy()

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise ValueError(f"hours must be positive, got {self.hours}")


@dataclass
class _Pools:
    """Sentences per text language, split into train and held-out by sentence."""

    train: dict[str, list[Sentence]]
    heldout: dict[str, list[Sentence]]


def _pools(langs: set[str], split: SplitPolicy, seed: int) -> _Pools:
    train: dict[str, list[Sentence]] = {}
    heldout: dict[str, list[Sentence]] = {}
    for lang in sorted(langs):
        sents = english_prose() + cmudict_sentences(3000, seed) if lang == "en" else gettext_sentences(lang)
        train[lang] = [s for s in sents if not split.sentence_heldout(s.text)]
        heldout[lang] = [s for s in sents if split.sentence_heldout(s.text)]
        # Prompts held out as recordings are held out as sentences too, for every source.
        for name, text in asterisk_transcripts(lang).items():
            sent = Sentence(text, lang, f"asterisk-{lang} transcript")
            (heldout if _asterisk_heldout(split, name, text) else train)[lang].append(sent)
    return _Pools(train, heldout)


def _asterisk_heldout(split: SplitPolicy, name: str, text: str) -> bool:
    # Keyed by text, not file name: several prompts share a transcript and must share a split.
    del name
    return split.file_heldout(text.lower().strip()) or split.sentence_heldout(text)


def _join(sentences: list[Sentence]) -> tuple[str, str]:
    texts = [s.text if s.text[-1] in ".!?" else s.text + "." for s in sentences]
    sources = sorted({s.source for s in sentences})
    return " ".join(texts), "+".join(sources)


def _pad_params(rng: random.Random) -> tuple[float, float, float]:
    return round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(0.2, 1.0), 3), round(rng.uniform(0.3, 0.95), 3)


def _espeak_items(
    rng: random.Random, pools: _Pools, opts: PlanOptions, budget: float, split_name: str, mode: str, start: int
) -> list[Item]:
    """mode: 'train', 'voice' (held-out voices, train sentences) or 'sentence' (held-out sentences)."""
    policy = opts.split
    bases = list(espeak_source.VOICES)
    english = [v for v in bases if espeak_source.VOICES[v] == "en"]
    foreign = [v for v in bases if espeak_source.VOICES[v] != "en"]
    items: list[Item] = []
    used = 0.0
    while used < budget:
        base = rng.choice(english if rng.random() < opts.english_share else foreign)
        variant = rng.choice(espeak_source.VARIANTS)
        voice = f"{base}+{variant}" if variant else base
        if policy.voice_heldout(voice) != (mode == "voice"):
            continue
        lang = espeak_source.VOICES[base]
        pool = (pools.heldout if mode == "sentence" else pools.train).get(lang) or []
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


def _festival_items(rng: random.Random, pools: _Pools, budget: float, split_name: str, heldout: bool) -> list[Item]:
    pool = (pools.heldout if heldout else pools.train)["en"]
    items: list[Item] = []
    used = 0.0
    while used < budget and pool:
        text, text_source = _join(rng.sample(pool, rng.choice((1, 1, 2))))
        stretch = rng.uniform(0.85, 1.3)
        lead, trail, peak = _pad_params(rng)
        params = (("stretch", stretch), ("f0", rng.uniform(85, 150)), ("f0_std", rng.uniform(8, 25)))
        items.append(Item(f"festival-{split_name}-{len(items):05d}", split_name, text, "en", text_source,
                          "kal_diphone", lead, trail, peak, params))  # fmt: skip
        used += len(text) * 0.07 * stretch + lead + trail
    return items


def _asterisk_items(rng: random.Random, opts: PlanOptions, lang: str, cap_s: float) -> list[Item]:
    if not asterisk_source.available(lang):
        return []
    # Transcripts are keyed by prompt name; the pools use the same names.
    found = asterisk_source.prompts(lang, asterisk_transcripts(lang))
    items: list[Item] = []
    used = 0.0
    for key, name, path, text in found:
        if used >= cap_s:
            break
        split_name = "heldout" if _asterisk_heldout(opts.split, key, text) else "train"
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
    langs = set(espeak_source.VOICES.values())
    pools = _pools(langs, opts.split, opts.split.seed)
    jobs: list[Job] = []
    recorded = 0.0
    if opts.use_asterisk:
        en = _asterisk_items(rng, opts, "en", 60.0 if opts.small else float("inf"))
        es = _asterisk_items(rng, opts, "es", 30.0 if opts.small else opts.es_minutes * 60.0)
        jobs += [Job("asterisk-en", tuple(en[i : i + 8])) for i in range(0, len(en), 8)]
        jobs += [Job("asterisk-es", tuple(es[i : i + 16])) for i in range(0, len(es), 16)]
        # Aligned English counts against the training budget (about 80 % align).
        recorded = 0.8 * sum(Path(i.path).stat().st_size / _GSM_BYTES_PER_S for i in en if i.split == "train")
    if opts.use_festival:
        fest = _festival_items(rng, pools, total * opts.festival_share, "train", heldout=False)
        fest += _festival_items(rng, pools, held * opts.festival_share, "heldout", heldout=True)
        jobs += [Job("festival", tuple(fest[i : i + 20])) for i in range(0, len(fest), 20)]
    espeak_budget = max(total * (1 - (opts.festival_share if opts.use_festival else 0)) - recorded, 0.0)
    items = _espeak_items(rng, pools, opts, espeak_budget, "train", "train", 0)
    items += _espeak_items(rng, pools, opts, held * 0.5, "heldout", "voice", len(items))
    items += _espeak_items(rng, pools, opts, held * 0.5, "heldout", "sentence", len(items))
    jobs += [Job("espeak", tuple(items[i : i + 16])) for i in range(0, len(items), 16)]
    return jobs
