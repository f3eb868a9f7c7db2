"""Train the default model: ``python -m training.train --corpus data/corpus``.

Steps
-----
1. **Prepare** (two worker processes): every labelled training clip is rendered in
   ``--variants`` versions. Version 0 is clean; the others draw, from a seeded
   generator, speaker changes (speed or tempo, pitch, vocal-tract length, silence
   padding), then channel degradations (reverb, random EQ, telephone / wideband /
   48 kHz-microphone band, noise at 5-30 dB SNR, a codec, level, a noise floor under
   digital silence); see :func:`_perturb_speaker` and :func:`_degrade`. Targets come
   from :func:`training.targets.make_targets` on the audio *after* the speaker changes
   but *before* the degradations, so noise never moves the brows; features come from
   the degraded audio through :func:`audio2face.audio.features.log_mel`, the exact
   function the engine streams. Each example records what was applied
   (``Example.augmentations``; totals from :func:`augmentation_counts`).
2. **Train**: random crops of ``--crop-s`` seconds, weighted L1 + MSE on the 52
   weights (mouth/jaw x3, lip aperture channels x6, bilabial frames x4), a velocity
   term on first differences (keeps jitter down; weight 10 since 2.1.0), and two hinges
   on the mouth opening (:func:`closure_loss` on bilabial frames, :func:`apart_loss`
   elsewhere, weighted up on noisy renders by :func:`noisiness`; on since 2.1.0, each
   flag's 0 turns it off); AdamW with one-cycle LR.
3. **Average**: an exponential moving average of the weights (``--ema-decay``, 0 = off;
   :func:`make_ema`, torch's ``AveragedModel``) is updated after every optimiser step.
   The averaged weights are what is saved as ``state_dict`` (so the exporter and the
   evaluation use them); the last raw weights are kept as ``raw_state_dict``.

Everything is seeded (``--seed``); torch runs on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from audio2face.audio.features import DEFAULT_FEATURES, log_mel
from audio2face.engines.phonemes.phoneset import BILABIALS, normalize_phone
from audio2face.errors import UnknownNameError
from audio2face.rigs import ARKIT_52

log = logging.getLogger("training.train")

SR = 16000
SILENCE_FEATURE = float(np.log(DEFAULT_FEATURES.eps))  # log-mel of digital silence
APERTURE = ("jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight",
            "mouthUpperUpLeft", "mouthUpperUpRight", "mouthPucker", "mouthFunnel")  # fmt: skip


@dataclass
class Example:
    """One rendered clip: features, targets and per-frame loss weights, all at 100 Hz."""

    feats: npt.NDArray[np.float32]  # [T, n_mels]
    targets: npt.NDArray[np.float32]  # [T, 52]
    weights: npt.NDArray[np.float32]  # [T]
    augmentations: tuple[str, ...] = ()  # "name:params" in the order applied ("clean" for variant 0)


def channel_weights() -> npt.NDArray[np.float32]:
    w = np.ones(len(ARKIT_52), np.float32)
    for i, name in enumerate(ARKIT_52):
        if name.startswith(("mouth", "jaw", "tongue")):
            w[i] = 3.0
        if name in APERTURE:
            w[i] = 6.0
    return w / w.mean()


def _frame_weights(phones: list[tuple[float, float, str]], n: int) -> npt.NDArray[np.float32]:
    """4 on bilabial frames (+-1 frame), 1 elsewhere: closures are short and matter most."""
    w = np.ones(n, np.float32)
    for s, e, p in phones:
        try:
            label = normalize_phone(p)
        except UnknownNameError:
            continue
        if label in BILABIALS:
            w[max(0, int(s * 100) - 1) : min(n, int(np.ceil(e * 100)) + 1)] = 4.0
    return w


# Bump when rendering changes in a way the hashed sources below cannot see (a data file, a
# dependency's behaviour); any edit to those sources already changes the cache key.
RENDER_VERSION = 2

# Codec mix for degraded variants (renormalised over the codecs this machine has).
CODEC_WEIGHTS = {"gsm": 0.15, "mulaw": 0.15, "g722": 0.1, "adpcm": 0.1, "opus": 0.15, "vorbis": 0.15, "mp3": 0.2}

Audio = npt.NDArray[np.float32]
Spans = list[tuple[float, float, str]]

PITCH_SHIFT_ST = 4.0  # the speaker stage's pitch shifts: uniform in +-4 semitones
_FORMANT_BACK = 2 ** (PITCH_SHIFT_ST / 12)  # the most a pitch shift's formant correction warps
VTL_RANGE = (0.85, 1.25)  # the vocal-tract-length factors since 2.2.0 (2.1.0: 0.85..1.15)


@dataclass(frozen=True, slots=True)
class SpeakerStage:
    """What the speaker stage may do to a training variant (before the targets).

    ``warps=False`` (``--no-speaker-warps``) is v1.0.0's stage: speed (resampling) and a
    plain pitch shift, no tempo and no vocal-tract warp. ``vtl_range`` (``--vtl-range``):
    the vocal-tract-length factors drawn (log-uniform) for half the variants (> 1: formants
    up, a shorter tract). The pitch correction shares the warp, so the product must stay
    inside :func:`training.augment.vtl_warp`'s 0.6..1.6."""

    warps: bool = True
    vtl_range: tuple[float, float] = VTL_RANGE

    def __post_init__(self) -> None:
        lo, hi = self.vtl_range
        if not self.warps and self.vtl_range != VTL_RANGE:
            raise ValueError("a vtl range needs the warps (drop --no-speaker-warps)")
        if not (0.6 * _FORMANT_BACK <= lo < hi <= 1.6 / _FORMANT_BACK):
            raise ValueError(
                f"vtl range must satisfy {0.6 * _FORMANT_BACK:.3f} <= LO < HI <= "
                f"{1.6 / _FORMANT_BACK:.3f} (with the pitch correction, the warp stays in "
                f"0.6..1.6), got {lo} {hi}"
            )

    def cache_tag(self) -> str:
        """Suffix of the render cache key; the default stage keeps the key it always had."""
        tag = "" if self.warps else ",no-warps"
        if self.vtl_range != VTL_RANGE:
            tag += f",vtl={self.vtl_range[0]:g}-{self.vtl_range[1]:g}"
        return tag


DEFAULT_SPEAKER = SpeakerStage()


def _perturb_speaker(
    audio: Audio, phones: Spans, rng: np.random.Generator, stage: SpeakerStage = DEFAULT_SPEAKER
) -> tuple[Audio, Spans, list[str]]:
    """Speaker and timing changes, made *before* the targets (they move the phones).

    Without warps (:class:`SpeakerStage`) it is v1.0.0's speaker stage: speed (resampling)
    on half the variants and a plain pitch shift (formants move with it), no tempo and no
    vocal-tract warp; for testing whether the warps cost lip closure (issue 12)."""
    from training import augment as A

    x, ph, applied = audio, phones, []
    if stage.warps:
        x, ph = _warp_speaker(x, ph, rng, applied, stage.vtl_range)
    else:
        if rng.random() < 0.5:
            f = float(rng.uniform(0.85, 1.2))
            x, ph = A.speed(x, f, ph)
            applied.append(f"speed:{f:.3f}")
        if rng.random() < 0.3:
            st = float(rng.uniform(-PITCH_SHIFT_ST, PITCH_SHIFT_ST))
            x = A.pitch_shift(x, st)
            applied.append(f"pitch:{st:+.2f}st")
    if rng.random() < 0.5:
        lead, trail = float(rng.uniform(0, 0.6)), float(rng.uniform(0, 0.6))
        x, ph = A.pad_silence(x, lead, trail, ph)
        applied.append(f"pad:{lead:.2f}+{trail:.2f}s")
    return x, ph, applied


def _warp_speaker(
    x: Audio, ph: Spans, rng: np.random.Generator, applied: list[str],
    vtl_range: tuple[float, float] = DEFAULT_SPEAKER.vtl_range,
) -> tuple[Audio, Spans]:
    """The speaker stage with warps: speed or tempo, pitch and vocal-tract length
    (appends what it applied to ``applied``). Every range takes the same draws from
    ``rng``, so two ranges at one seed differ only in the warp factors."""
    from training import augment as A

    r = rng.random()
    if r < 0.25:  # resampling: faster and higher (pitch and formants), like a smaller speaker talking fast
        f = float(rng.uniform(0.85, 1.2))
        x, ph = A.speed(x, f, ph)
        applied.append(f"speed:{f:.3f}")
    elif r < 0.6:  # speaking rate alone
        f = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        x, ph = A.tempo(x, f, ph)
        applied.append(f"tempo:{f:.3f}")
    warp = 1.0  # pitch and vocal-tract length share one formant warp (one STFT pass)
    if rng.random() < 0.3:
        st = float(rng.uniform(-PITCH_SHIFT_ST, PITCH_SHIFT_ST))
        x = A.pitch_shift(x, st)
        warp /= 2 ** (st / 12)  # put the formants back: a pitch change, not a chipmunk
        applied.append(f"pitch:{st:+.2f}st")
    if rng.random() < 0.5:
        vtl = float(np.exp(rng.uniform(np.log(vtl_range[0]), np.log(vtl_range[1]))))
        warp *= vtl
        applied.append(f"vtl:{vtl:.3f}")
    if warp != 1.0:
        x = A.vtl_warp(x, warp)
    return x, ph


def _degrade(audio: Audio, rng: np.random.Generator, others: list[Audio]) -> tuple[Audio, list[str]]:
    """Channel degradations, made *after* the targets, in signal-chain order: room, device
    colour and band, ambient noise, transmission codec, level, then a noise floor where
    digital silence survived (so rest is also learnt against a floor)."""
    from training import augment as A

    x, applied = audio, []
    if rng.random() < 0.3:
        rt60, wet = float(rng.uniform(0.15, 0.8)), float(rng.uniform(0.2, 0.7))
        x = A.reverb(x, rng, rt60_s=(rt60, rt60), wet=wet)
        applied.append(f"reverb:{rt60:.2f}s/wet{wet:.2f}")
    if rng.random() < 0.4:
        bands = A.random_eq(rng)
        x = A.equalize(x, bands)
        applied.append("eq:" + ",".join(b.describe() for b in bands))
    r = rng.random()
    if r < 0.1:
        x = A.band_limit(x)
        applied.append("band.telephone")
    elif r < 0.25:
        cutoff, highpass = float(rng.uniform(7000.0, 7900.0)), float(rng.uniform(50.0, 200.0))
        x = A.wideband(x, cutoff, highpass)
        applied.append(f"band.wideband:{cutoff:.0f}Hz/hp{highpass:.0f}")
    elif r < 0.4:
        chain = A.random_mic_chain(rng)
        x = A.mic_chain_48k(x, chain)
        applied.append(f"band.mic48k:{chain.describe()}")
    if rng.random() < 0.6:
        kind = str(rng.choice(["white", "pink", "babble", "music"], p=[0.25, 0.3, 0.25, 0.2]))
        kind = "music" if kind == "babble" and not others else kind
        n = len(x)
        noise = (A.white_noise(n, rng) if kind == "white" else A.pink_noise(n, rng) if kind == "pink"
                 else A.babble_noise(others, n, rng) if kind == "babble" else A.music_background(n, rng))  # fmt: skip
        snr = float(rng.uniform(5.0, 30.0))
        x = A.add_noise(x, noise, snr, reference_rms=A.active_rms(x))  # SNR against speech, not pauses
        applied.append(f"noise.{kind}:{snr:.1f}dB")
    codecs = [c for c in A.available_codecs() if c in CODEC_WEIGHTS]
    if codecs and rng.random() < 0.3:
        p = np.array([CODEC_WEIGHTS[c] for c in codecs])
        codec, quality = str(rng.choice(codecs, p=p / p.sum())), float(rng.uniform(0.0, 1.0))
        x = A.codec_roundtrip(x, codec, quality)
        applied.append(f"codec.{codec}:q{quality:.2f}")
    db = float(rng.uniform(-24.0, 6.0))
    x = A.gain(x, db)
    applied.append(f"gain:{db:+.1f}dB")
    if A.has_digital_silence(x) and rng.random() < 0.7:
        speech_db = 20 * np.log10(A.active_rms(x) + 1e-12)
        level = min(float(rng.uniform(-60.0, -35.0)), speech_db - 25.0)  # a floor, never a noise condition
        x = A.noise_floor(x, rng, level)
        applied.append(f"floor:{level:.0f}dBFS")
    return x, applied


def render_clip(args: tuple[str, list, int, int, list[str], SpeakerStage]) -> list[Example]:
    """All variants of one clip (worker entry point; deterministic given its seed)."""
    from training import augment as A
    from training.targets import make_targets

    wav, phones, variants, seed, other_wavs, stage = args
    audio, sr = sf.read(wav, dtype="float32")
    if sr != SR:
        raise ValueError(f"{wav}: expected {SR} Hz, got {sr}")
    rng = np.random.default_rng(seed)
    others = [sf.read(w, dtype="float32")[0] for w in other_wavs]
    out = []
    for v in range(variants):
        x, ph = audio, [tuple(p) for p in phones]
        applied = ["clean"] if v == 0 else []
        if v > 0:
            x, ph, applied = _perturb_speaker(x, ph, rng, stage)
        targets = make_targets(x, ph, fps=100.0)
        if v > 0:
            x, channel = _degrade(x, rng, others)
            applied += channel
        else:
            db = float(rng.uniform(-12.0, 0.0))
            x = A.gain(x, db)
            applied.append(f"gain:{db:+.1f}dB")
        feats = log_mel(x)
        n = min(len(feats), len(targets))
        out.append(Example(feats[:n], targets[:n], _frame_weights(ph, n), tuple(applied)))
    return out


def augmentation_counts(examples: list[Example]) -> dict[str, int]:
    """How many examples each augmentation was applied to, by name (the part before ':',
    e.g. ``codec.opus``, ``noise.pink``, ``vtl``, ``clean``), plus ``examples`` in all."""
    import collections

    counts = collections.Counter(a.split(":", 1)[0] for e in examples for a in e.augmentations)
    return {"examples": len(examples), **dict(sorted(counts.items()))}


def _render_fingerprint() -> str:
    """Hash of everything that decides what a rendered example contains besides the corpus
    and the seed: the augmentation, target and feature code, and this module's render path."""
    import hashlib
    import inspect

    import audio2face.audio.features as features
    import training.augment as augment
    import training.targets as targets

    h = hashlib.sha256(f"render-v{RENDER_VERSION}".encode())
    for module in (augment, targets, features):
        h.update(Path(inspect.getfile(module)).read_bytes())
    for fn in (_perturb_speaker, _warp_speaker, _degrade, render_clip, _frame_weights):
        h.update(inspect.getsource(fn).encode())
    h.update(json.dumps(CODEC_WEIGHTS, sort_keys=True).encode())
    return h.hexdigest()


def prepare(corpus: Path, variants: int, seed: int, workers: int,
            limit: int | None = None, stage: SpeakerStage = DEFAULT_SPEAKER) -> list[Example]:
    """Render the labelled training clips of ``corpus`` (see module doc), cached in
    ``training/work/`` under a key of the manifest, variants, seed, limit and the render
    code (:func:`_render_fingerprint`). Logs :func:`augmentation_counts`."""
    import hashlib
    import pickle

    manifest = (corpus / "manifest.jsonl").read_bytes()
    tag = stage.cache_tag()
    key = hashlib.sha256(manifest + f"{variants},{seed},{limit},{_render_fingerprint()}{tag}".encode()).hexdigest()[:16]
    cache = Path("training/work") / f"prepared-{key}.pkl"
    if cache.exists():
        log.info("using prepared examples from %s", cache)
        with cache.open("rb") as fh:
            examples: list[Example] = pickle.load(fh)
    else:
        examples = _render_all(corpus, variants, seed, workers, limit, stage)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as fh:
            pickle.dump(examples, fh, protocol=pickle.HIGHEST_PROTOCOL)
    log.info("augmentations: %s", json.dumps(augmentation_counts(examples)))
    return examples


def _training_records(corpus: Path, limit: int | None) -> tuple[list[dict], list[dict]]:
    """All manifest records, and the labelled training clips in the order they are rendered."""
    recs = [json.loads(line) for line in (corpus / "manifest.jsonl").open(encoding="utf-8")]
    train = [r for r in recs if r["split"] == "train" and r["phones"]]
    return recs, (train[:limit] if limit else train)


# Corpus sources recorded from a human speaker (Asterisk's Allison, training/data/asterisk_source.py);
# every other source is a synthesiser.
REAL_SOURCE_PREFIX = "asterisk-"


def real_speaker_mask(corpus: Path, variants: int, limit: int | None = None) -> npt.NDArray[np.bool_]:
    """Per rendered example (in :func:`prepare`'s order: each labelled training clip's
    ``variants`` renders in turn), whether it comes from a real-speaker source."""
    _, train = _training_records(corpus, limit)
    real = np.array([str(r.get("source", "")).startswith(REAL_SOURCE_PREFIX) for r in train], bool)
    return np.repeat(real, variants)


def sampling_probs(lengths: npt.NDArray[np.integer], receptive_field: int,
                   real: npt.NDArray[np.bool_] | None = None, real_weight: float = 1.0) -> npt.NDArray[np.float64]:  # fmt: skip
    """How often each example is drawn for a crop: in proportion to its crop positions
    (length minus the receptive field, at least 1), times ``real_weight`` for the
    real-speaker examples (``real``; ``--real-weight``). A weight of 1 gives exactly the
    proportions of 2.1.0's recipe."""
    probs = np.maximum(lengths - receptive_field, 1).astype(np.float64)
    if real_weight != 1.0:
        if real is None or len(real) != len(probs):
            raise ValueError("--real-weight needs a real-speaker mask of one entry per example")
        if real_weight < 0.0:
            raise ValueError(f"real weight must be >= 0, got {real_weight}")
        probs = np.where(real, probs * real_weight, probs)
    return probs / probs.sum()


def _render_all(corpus: Path, variants: int, seed: int, workers: int, limit: int | None,
                stage: SpeakerStage = DEFAULT_SPEAKER) -> list[Example]:  # fmt: skip
    recs, train = _training_records(corpus, limit)
    pool_wavs = [str(corpus / r["wav"]) for r in recs if r["split"] == "train"]
    rng = np.random.default_rng(seed)
    jobs = []
    for k, r in enumerate(train):
        babble = [pool_wavs[i] for i in rng.choice(len(pool_wavs), size=min(4, len(pool_wavs)), replace=False)]
        jobs.append((str(corpus / r["wav"]), r["phones"], variants, seed * 100003 + k, babble, stage))
    t0 = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    examples: list[Example] = []
    with ctx.Pool(workers) as pool:
        for k, exs in enumerate(pool.imap(render_clip, jobs, chunksize=4)):
            examples += exs
            if k % 200 == 0:
                log.info("prepared %d/%d clips (%.0fs)", k + 1, len(jobs), time.monotonic() - t0)
    log.info("prepared %d examples, %.2f h, in %.0fs", len(examples),
             sum(len(e.feats) for e in examples) / 360000, time.monotonic() - t0)
    return examples


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings (defaults are the shipped recipe)."""

    steps: int = 8000
    batch: int = 32
    crop_s: float = 2.5
    lr: float = 2e-3
    weight_decay: float = 1e-4
    velocity_weight: float = 10.0
    seed: int = 1234
    threads: int = 2
    ema_decay: float = 0.999  # 0: no averaging (the raw weights are the model)
    # The hinges of 2.1.0 (issue 12, session 10's round 4, chosen on validation); 0 turns each off.
    closure_weight: float = 0.3  # see closure_loss
    apart_weight: float = 0.3  # see apart_loss
    apart_noise_weight: float = 0.6  # extra apart weight on noisy renders (see noisiness)
    # Issue 12, session 11: how much more often the real speaker's renders are drawn than a
    # synthetic voice's of the same length (see sampling_probs); 1 is 2.1.0's recipe.
    real_weight: float = 1.0
    # Issue 12, session 11: the closure hinge's weight on the real speaker's renders, as a
    # multiple of closure_weight (see closure_loss); 1 is 2.1.0's recipe. Their bilabials
    # come from a forced alignment, not from the synthesiser's own timings.
    real_closure_weight: float = 1.0
    # Issue 12, session 14: the share of the teachers' outputs in the regression target
    # (see teacher_targets); 0 is 2.1.0's recipe (no teachers).
    distill: float = 0.0


# The channels of the quality metric's mouth opening (benchmarks/quality/metrics.py:
# aperture): the jaw term is jawOpen - mouthClose clipped to 0..1, then the lips'.
_LOWER = (ARKIT_52.index("mouthLowerDownLeft"), ARKIT_52.index("mouthLowerDownRight"))
_UPPER = (ARKIT_52.index("mouthUpperUpLeft"), ARKIT_52.index("mouthUpperUpRight"))
_JAW, _CLOSE = ARKIT_52.index("jawOpen"), ARKIT_52.index("mouthClose")
BILABIAL_WEIGHT = 4.0  # _frame_weights' value on bilabial frames


def aperture(frames):  # noqa: ANN001, ANN201 - torch tensors [..., 52]
    """Mouth opening per frame, as the quality metric measures it."""
    jaw = (frames[..., _JAW] - frames[..., _CLOSE]).clamp(0.0, 1.0)
    lower = 0.5 * (frames[..., _LOWER[0]] + frames[..., _LOWER[1]])
    upper = 0.5 * (frames[..., _UPPER[0]] + frames[..., _UPPER[1]])
    return jaw + 0.5 * lower + 0.25 * upper


def _masked_mean(values, mask):  # noqa: ANN001, ANN201 - torch tensors
    """Mean of ``values`` over the frames where ``mask`` holds (0 when none does)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def closure_loss(pred, target, weights, gain=None):  # noqa: ANN001, ANN201 - torch tensors
    """How much wider the predicted mouth is than the target's on bilabial frames (a
    hinge: a mouth closed further than the target costs nothing). The per-frame loss
    treats an opening of 0.05 and of 0 alike, but the closure metric counts a token as
    closed only below a quarter of the utterance's P90 opening; this pushes the
    bilabials' minimum down. Bilabial frames are those ``_frame_weights`` marks.

    ``gain`` ([batch], optional) scales each example's gaps (``--real-closure-weight``:
    the real speaker's renders, whose bilabials come from a forced alignment)."""
    gap = (aperture(pred) - aperture(target)).clamp_min(0.0)
    if gain is not None:
        gap = gap * gain[:, None]
    return _masked_mean(gap, weights >= BILABIAL_WEIGHT)


def apart_loss(pred, target, weights, gain=None):  # noqa: ANN001, ANN201 - torch tensors
    """The counterpart of :func:`closure_loss` on every other frame: how much narrower
    the predicted mouth is than the target's (a hinge). With the closure hinge alone the
    model closes more everywhere (it cannot always tell /m/ from /n/), which the
    ``lips_shut`` metric shows; this makes closing off the bilabials cost too.

    ``gain`` ([batch], optional) scales each example's gaps: the trainer passes
    ``apart_weight + apart_noise_weight * noisiness`` so that noisy renders, where the
    model shuts the lips most, pay more without changing what clean speech pays."""
    gap = (aperture(target) - aperture(pred)).clamp_min(0.0)
    if gain is not None:
        gap = gap * gain[:, None]
    return _masked_mean(gap, (weights > 0) & (weights < BILABIAL_WEIGHT))


NOISY_SNR_DB = (25.0, 10.0)  # noisiness 0 at or above the first SNR, 1 at or below the second


def noisiness(augmentations: tuple[str, ...]) -> float:
    """How noisy a render is, in [0, 1], from its additive-noise augmentation
    (``noise.KIND:SNRdB``; see :func:`_degrade`): 0 for clean speech or an SNR of 25 dB
    and more, 1 at 10 dB and below, linear in between. The noise floor under digital
    silence is not a noise condition and counts 0."""
    hi, lo = NOISY_SNR_DB
    for a in augmentations:
        if a.startswith("noise.") and a.endswith("dB"):
            snr = float(a.rsplit(":", 1)[1][:-2])
            return float(np.clip((hi - snr) / (hi - lo), 0.0, 1.0))
    return 0.0


def make_ema(model, decay: float):  # noqa: ANN001, ANN201 - torch types, torch imported lazily
    """An exponential moving average of ``model``'s parameters *and* buffers (the batch
    norms' running statistics are averaged too, so the averaged model is self-consistent),
    or ``None`` when ``decay`` is 0. Call :func:`update_ema` after every optimiser step;
    the first call copies the weights, each later one sets
    ``avg = decay * avg + (1 - decay) * weights``."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema decay must be in [0, 1), got {decay}")
    if decay == 0.0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def update_ema(ema, model) -> None:  # noqa: ANN001 - torch modules
    """One EMA step (a no-op for ``ema=None``). Integer buffers (the batch norms'
    ``num_batches_tracked``) are copied, not averaged."""
    if ema is None:
        return
    ema.update_parameters(model)
    for avg, cur in zip(ema.module.buffers(), model.buffers(), strict=True):
        if not avg.is_floating_point():
            avg.copy_(cur)


def averaged_module(ema, model):  # noqa: ANN001, ANN201 - torch modules
    """The module to save and export: the averaged copy (eval mode), or ``model`` itself
    when there is no EMA."""
    return model if ema is None else ema.module.eval()


def teacher_targets(examples: list[Example], checkpoints: list[Path]) -> list[npt.NDArray[np.float32]]:
    """The mean of the ``checkpoints``' outputs (their EMA weights) at every 100 Hz frame
    of each example, ``[T, 52]`` like its targets: a seed ensemble's view of the clip,
    for distilling it into one network (``--teacher``, ``--distill``).

    A network's outputs are at 50 Hz, on the even feature frames of its input; the odd
    frames are the outputs of the same features shifted by one. Each teacher pads the
    clip as training and the engine do (silence before and after), so frame ``k`` of the
    result is what the teacher shows at feature frame ``k``."""
    import torch

    from training.model import load_checkpoint

    teachers = [load_checkpoint(c)[0] for c in checkpoints]
    out = []
    with torch.no_grad():
        for ex in examples:
            n = len(ex.feats)
            total = np.zeros((n, ex.targets.shape[1]), np.float64)
            for m in teachers:
                cfg = m.config
                f = np.pad(ex.feats, ((cfg.left_context, cfg.right_context + 1), (0, 0)),
                           constant_values=SILENCE_FEATURE)  # fmt: skip
                x = torch.from_numpy(f)[None]
                even, odd = m(x)[0].numpy(), m(x[:, 1:])[0].numpy()
                total[0::2] += even[: (n + 1) // 2]
                total[1::2] += odd[: n // 2]
            out.append((total / len(teachers)).astype(np.float32))
    return out


def _pad(ex: Example, left: int, right: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Silence features before/after (as the engine pads), edge targets, zero weight."""
    f = np.pad(ex.feats, ((left, right), (0, 0)), constant_values=SILENCE_FEATURE)
    w = np.pad(ex.weights, (left, right))
    return f, _pad_targets(ex.targets, left, right), w


def _pad_targets(targets: np.ndarray, left: int, right: int) -> np.ndarray:
    """Targets padded as :func:`_pad` pads them: the edge frames repeated."""
    return np.pad(targets, ((left, right), (0, 0)), mode="edge")


def train(examples: list[Example], opts: TrainOptions, config=None, real=None, teacher=None):  # noqa: ANN001, ANN201
    """Fit a :class:`training.model.SpeechToFace`; return it (eval mode) and a log dict.

    ``teacher`` (:func:`teacher_targets`, one array per example): the regression and
    velocity terms aim at ``(1 - opts.distill) * targets + opts.distill * teacher``; the
    closure and apart hinges keep the phone-derived targets (their bilabial frames come
    from the labels, and a hinge on a teacher's opening would teach its misses).

    ``real`` (bool per example, :func:`real_speaker_mask`) marks the real speaker's
    renders; ``opts.real_weight`` scales how often they are drawn (:func:`sampling_probs`).
    The returned model holds the averaged weights when ``opts.ema_decay`` > 0; the log
    dict then carries the last raw weights as ``raw_state_dict``."""
    import torch

    from training.model import ModelConfig, SpeechToFace

    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    rng = np.random.default_rng(opts.seed)
    config = config or ModelConfig()
    model = SpeechToFace(config)
    allf = np.concatenate([e.feats for e in examples])
    model.set_normalisation(torch.from_numpy(allf.mean(0)), torch.from_numpy(allf.std(0)))
    L, R, rf = config.left_context, config.right_context, config.receptive_field
    padded = [_pad(e, L, R) for e in examples]
    if (teacher is None) != (opts.distill == 0.0):
        raise ValueError("distilling needs teacher targets and a --distill share in (0, 1], or neither")
    if not 0.0 <= opts.distill <= 1.0:
        raise ValueError(f"the distill share must be in [0, 1], got {opts.distill}")
    taught = None if teacher is None else [_pad_targets(t, L, R) for t in teacher]
    n_out = max(2, int(opts.crop_s * 50))
    crop = rf + 2 * (n_out - 1)
    lengths = np.array([len(p[0]) for p in padded])
    probs = sampling_probs(lengths, rf, real, opts.real_weight)
    is_real = np.zeros(len(examples), bool) if real is None else np.asarray(real, bool)
    real_picks = 0
    # Per example: the apart hinge's weight (the noisy renders' extra included).
    apart_gain = opts.apart_weight + opts.apart_noise_weight * np.array(
        [noisiness(e.augmentations) for e in examples], np.float32
    )
    # Per example: the closure hinge's gain (None: 1 for all, 2.1.0's recipe exactly).
    closure_gain = None
    if opts.real_closure_weight != 1.0:
        if opts.real_closure_weight < 0.0:
            raise ValueError(f"real closure weight must be >= 0, got {opts.real_closure_weight}")
        if real is None:
            raise ValueError("--real-closure-weight needs a real-speaker mask")
        closure_gain = np.where(is_real, opts.real_closure_weight, 1.0).astype(np.float32)
    cw = torch.from_numpy(channel_weights())
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=opts.steps, pct_start=0.1)
    ema = make_ema(model, opts.ema_decay)
    history: list[dict[str, float]] = []
    t0, running = time.monotonic(), 0.0
    model.train()
    for step in range(opts.steps):
        fb = np.full((opts.batch, crop, config.n_mels), SILENCE_FEATURE, np.float32)
        tb = np.zeros((opts.batch, n_out, config.n_out), np.float32)
        kb = None if taught is None else np.zeros_like(tb)
        wb = np.zeros((opts.batch, n_out), np.float32)
        picks = rng.choice(len(padded), size=opts.batch, p=probs)
        real_picks += int(is_real[picks].sum())
        for b, i in enumerate(picks):
            f, t, w = padded[i]
            s = int(rng.integers(0, max(1, len(f) - crop + 1)))
            seg = f[s : s + crop]
            fb[b, : len(seg)] = seg
            idx = s + L + 2 * np.arange(n_out)
            ok = idx < len(f)
            tb[b, ok] = t[idx[ok]]
            wb[b, ok] = w[idx[ok]]
            if kb is not None and taught is not None:
                kb[b, ok] = taught[i][idx[ok]]
        feats, tgt, w = torch.from_numpy(fb), torch.from_numpy(tb), torch.from_numpy(wb)
        # The regression target: the labels' targets, or their mix with the teachers'.
        aim = tgt if kb is None else (1.0 - opts.distill) * tgt + opts.distill * torch.from_numpy(kb)
        pred = model(feats)
        err = (pred - aim).abs() + 2.0 * (pred - aim) ** 2
        loss = (err * cw).mean(-1).mul(w).sum() / w.sum().clamp_min(1.0)
        dv = ((pred[:, 1:] - pred[:, :-1]) - (aim[:, 1:] - aim[:, :-1])).abs()
        wv = torch.minimum(w[:, 1:], w[:, :-1]).clamp(max=1.0)  # no extra velocity weight
        vloss = (dv * cw).mean(-1).mul(wv).sum() / wv.sum().clamp_min(1.0)
        total = loss + opts.velocity_weight * vloss
        if opts.closure_weight:
            gain = None if closure_gain is None else torch.from_numpy(closure_gain[picks])
            total = total + opts.closure_weight * closure_loss(pred, tgt, w, gain)
        if opts.apart_weight or opts.apart_noise_weight:
            total = total + apart_loss(pred, tgt, w, torch.from_numpy(apart_gain[picks]))
        optim.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        update_ema(ema, model)
        running = 0.98 * running + 0.02 * total.item() if step else total.item()
        if step % 200 == 0 or step == opts.steps - 1:
            history.append({"step": step, "loss": round(running, 5), "s": round(time.monotonic() - t0, 1)})
            log.info("step %d loss %.4f (%.0fs)", step, running, time.monotonic() - t0)
    model.eval()
    info: dict[str, object] = {"history": history, "train_seconds": round(time.monotonic() - t0, 1),
                               "ema_decay": opts.ema_decay}  # fmt: skip
    if real is not None:  # how much of the training the real speaker got
        info["real_speaker"] = {"examples": int(is_real.sum()), "weight": opts.real_weight,
                                "closure_weight": opts.real_closure_weight,
                                "expected_share": round(float(probs[is_real].sum()), 4),
                                "drawn_share": round(real_picks / max(1, opts.steps * opts.batch), 4)}  # fmt: skip
    if teacher is not None:
        info["distill"] = opts.distill
    if ema is not None:
        info["raw_state_dict"] = model.state_dict()
    return averaged_module(ema, model), info


def git_commit() -> str:
    from training.data.build import git_commit as commit

    return commit()


def save_checkpoint(out: Path, model, info: dict[str, object]) -> None:  # noqa: ANN001 - torch module
    """Write ``out`` (``state_dict``: ``model``'s weights, the averaged ones when trained
    with an EMA; ``raw_state_dict``: the last step's, taken out of ``info`` when there;
    ``config``; ``info``) and ``info`` as JSON next to it."""
    import torch

    info = dict(info)
    raw_state = info.pop("raw_state_dict", None)
    ckpt: dict[str, object] = {"state_dict": model.state_dict(), "config": model.config.__dict__, "info": info}
    if raw_state is not None:
        ckpt["raw_state_dict"] = raw_state  # for comparison: export --weights raw
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    out.with_suffix(".json").write_text(json.dumps(info, indent=1), "utf-8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--out", type=Path, default=Path("training/work/model.pt"))
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--no-speaker-warps", dest="warps", action="store_false",
                        help="v1.0.0's speaker stage (speed, plain pitch shift): no tempo, no vocal-tract warp")
    parser.add_argument("--vtl-range", type=float, nargs=2, metavar=("LO", "HI"),
                        default=DEFAULT_SPEAKER.vtl_range,
                        help="vocal-tract-length warp factors, drawn log-uniform for half the variants "
                        "(default: %(default)s; > 1 moves the formants up, as a shorter tract does)")
    parser.add_argument("--steps", type=int, default=TrainOptions.steps)
    parser.add_argument("--batch", type=int, default=TrainOptions.batch)
    parser.add_argument("--lr", type=float, default=TrainOptions.lr)
    parser.add_argument("--seed", type=int, default=TrainOptions.seed)
    parser.add_argument("--threads", type=int, default=TrainOptions.threads,
                        help="torch threads; 1 is much faster when another process holds a core")
    parser.add_argument("--ema-decay", type=float, default=TrainOptions.ema_decay,
                        help="exponential moving average of the weights, saved for export (0: off)")
    parser.add_argument("--velocity-weight", type=float, default=TrainOptions.velocity_weight,
                        help="weight of the first-difference term that keeps jitter down")
    parser.add_argument("--closure-weight", type=float, default=TrainOptions.closure_weight,
                        help="weight of the bilabial closure hinge (closure_loss; 0: off)")
    parser.add_argument("--apart-weight", type=float, default=TrainOptions.apart_weight,
                        help="weight of the lips-apart hinge off the bilabials (apart_loss; 0: off)")
    parser.add_argument("--apart-noise-weight", type=float, default=TrainOptions.apart_noise_weight,
                        help="extra apart weight on noisy renders, times their noisiness (1 at 10 dB SNR; 0: off)")
    parser.add_argument("--real-weight", type=float, default=TrainOptions.real_weight,
                        help="how much more often the real speaker's (Asterisk) renders are drawn than a "
                        "synthetic voice's of the same length (1: the recipe's proportions)")
    parser.add_argument("--real-closure-weight", type=float, default=TrainOptions.real_closure_weight,
                        help="the closure hinge's weight on the real speaker's renders, as a multiple of "
                        "--closure-weight (their bilabials come from a forced alignment; 1: the recipe)")
    parser.add_argument("--teacher", default="",
                        help="comma-separated training checkpoints whose mean output the regression "
                        "target mixes in (see --distill and teacher_targets)")
    parser.add_argument("--distill", type=float, default=TrainOptions.distill,
                        help="the teachers' share of the regression target, in (0, 1] with --teacher")
    parser.add_argument("--channels", type=int, default=None,
                        help="the network's width (default: ModelConfig's, 96); the per-step cost grows "
                        "about with its square")
    return parser


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The optimisation settings among the command line's arguments."""
    return TrainOptions(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                        ema_decay=args.ema_decay, velocity_weight=args.velocity_weight,
                        closure_weight=args.closure_weight, apart_weight=args.apart_weight,
                        apart_noise_weight=args.apart_noise_weight, real_weight=args.real_weight,
                        real_closure_weight=args.real_closure_weight, distill=args.distill)  # fmt: skip


def model_config(args: argparse.Namespace):  # noqa: ANN201 - torch is imported lazily
    """The architecture among the command line's arguments (ModelConfig's defaults
    for what they leave out)."""
    from training.model import ModelConfig

    if args.channels is None:
        return ModelConfig()
    if not 8 <= args.channels <= 1024:
        raise SystemExit(f"--channels must be in 8..1024, got {args.channels}")
    return ModelConfig(channels=args.channels)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Checked before the render, which can take half an hour.
    teachers = [Path(c) for c in args.teacher.split(",") if c]
    if bool(teachers) != (args.distill > 0.0):
        raise SystemExit("--teacher and --distill go together: give both, or neither")
    for c in teachers:
        if not c.is_file():
            raise SystemExit(f"--teacher {c}: no such checkpoint (a training.train --out file)")
    config = model_config(args)
    try:
        stage = SpeakerStage(args.warps, (args.vtl_range[0], args.vtl_range[1]))
    except ValueError as exc:
        raise SystemExit(f"--vtl-range: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    np.random.seed(args.seed)
    t0 = time.monotonic()
    examples = prepare(args.corpus, args.variants, args.seed, args.workers, args.limit, stage)
    prep_s = time.monotonic() - t0
    opts = options_from_args(args)
    real = real_speaker_mask(args.corpus, args.variants, args.limit)
    if len(real) != len(examples):
        raise SystemExit(f"{len(examples)} rendered examples, but the manifest gives {len(real)}")
    t1 = time.monotonic()
    teacher = teacher_targets(examples, teachers) if teachers else None
    model, info = train(examples, opts, config=config, real=real, teacher=teacher)
    if teachers:
        info["teachers"] = {"checkpoints": [str(c) for c in teachers], "seconds": round(time.monotonic() - t1, 1)}
    meta = json.loads((args.corpus / "metadata.json").read_text("utf-8")) if (args.corpus / "metadata.json").exists() else {}
    info |= {
        "prepare_seconds": round(prep_s, 1),
        "train_hours_rendered": round(sum(len(e.feats) for e in examples) / 360000, 3),
        "variants": args.variants,
        "speaker_warps": args.warps,
        "vtl_range": list(stage.vtl_range),
        "options": opts.__dict__,
        "config": model.config.as_dict(),
        "corpus_stats": meta.get("stats", {}),
        "augmentations": augmentation_counts(examples),
        # Provenance: which data build and which code made these weights (the exporter
        # copies both into the shipped model's metadata).
        "data_build": {k: meta.get(k) for k in ("commit", "built_at", "command", "wall_seconds", "failures")},
        "train_commit": git_commit(),
    }
    save_checkpoint(args.out, model, info)
    log.info("saved %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
