"""Train the ``tongue`` step's classifiers (interdental and alveolar sounds).

    python -m audio2face.postprocess.tongue_train --espeak [--out FILE] [--seed 0]
    python -m audio2face.postprocess.tongue_train --corpus data/corpus [--out FILE] [--seed 0]

**espeak-ng** (the shipped model): the sentences below (rich in "th", with s, f, z, v,
t, d, n, l around them), spoken by several espeak-ng English voices and variants at
several rates and pitches, at 22.05 kHz and resampled to 16 kHz, with a little white
noise. Labels come from espeak's phone events: the phone sounding at ``i / fps``
makes frame ``i`` interdental (/θ ð/), alveolar (/t d n l/ and the flap /ɾ/: the
tongue tip on the ridge behind the upper teeth, seen between parted lips) or neither.
The sibilants /s z/ are alveolar too but count as neither: the teeth are nearly
closed for them and the tongue is not seen. Sentences are split 80/20 into training
and held-out sets (by sentence, so no sentence is in both).

**Corpus** (tried in session 6, not shipped): the training split of the default
model's corpus (``python -m training.data.build``): espeak-ng in many languages,
eleven festival voices, flite ``awb``/``kal`` and the Asterisk English speaker, with
phone timings in the unified phone set (interdental ``TH DH``, alveolar
``T D N L DX``). The voices that corpus holds out whole stay out here too. On those
held-out voices (``benchmarks/tongue_heldout.py``) it was no better than the
espeak-ng model: both sit near chance on voices other than espeak-ng's
(docs/benchmarks.md, "Tongue on voices never heard"), so the spectral bands alone do
not carry the tongue across voices.

Features are exactly what the step computes at run time
(:class:`~audio2face.audio.prosody.ProsodyTracker` at 30 fps, then
:func:`~audio2face.postprocess.tongue.tongue_features`), from frames in speech only.
The model is a one-hidden-layer network with balanced class weights, fitted by
full-batch Adam (seconds on the espeak-ng data; half an hour on the corpus). It writes
the weights, the standardisation and precision and recall at the step's default
thresholds into the JSON file.

Needs libespeak-ng (``apt-get install espeak-ng``); only run to rebuild the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from audio2face.audio.prosody import ProsodyTracker
from audio2face.audio.resample import resample
from audio2face.postprocess.tongue import (
    BUILTIN_MODEL,
    TONGUE_CLASSES,
    TongueModel,
    TongueOptions,
    tongue_features,
)

FPS = 30.0
DENTAL = {"θ", "ð"}
ALVEOLAR = {"t", "d", "n", "l", "ɾ", "ɫ", "n̩", "l̩", "ɾ̃"}
# The same classes in the corpus's unified phone set.
UNIFIED_DENTAL = frozenset({"TH", "DH"})
UNIFIED_ALVEOLAR = frozenset({"T", "D", "N", "L", "DX"})
CLASSES = TONGUE_CLASSES  # labels 1 and 2; 0 is neither
VOICES = ["en-us", "en", "en-gb-x-rp", "en-us+m3", "en-us+f2", "en+f4", "en-029", "en-gb-scotland"]

SENTENCES = [
    "The thick thorn bush threatened the path through the thicket.",
    "Think about those three things before you say something else.",
    "Their father thought the weather was rather smooth this Thursday.",
    "Thank you for the thoughtful gift that they sent with the note.",
    "This is the month that the athletes gather in the north.",
    "Both brothers breathe through their mouths when they sleep.",
    "The theory of the thing is that they think faster than us.",
    "Seth sat with his mother on the sofa and sang a soft song.",
    "Fifty thin fish swam south with the others in the sea.",
    "Those clothes are neither fashionable nor worth the price.",
    "Smith thinks the theatre is the best place on earth.",
    "Sue said she saw six snakes sliding silently by the stream.",
    "Very few voices vanish faster than the faint ones.",
    "The zebra's zigzag stripes dazzle visitors at the zoo.",
    "Then the thunder rolled over the hills and the thin trees.",
    "Without a doubt, that is the truth, though nobody says it.",
    "Throw the ball through the hoop three times for the team.",
    "Nothing is worth more than health and a thankful heart.",
    "The Thames flows through the heart of the southern city.",
    "My teeth chatter when the north wind blows this cold.",
    "Heather gathered feathers from the path beneath the oak.",
    "Do these things for the sake of the others, not for fame.",
    "Let the lazy dog lie down in the sun near the old wall.",
    "A loud noise from the kitchen made the cat run outside.",
    "Both of them went to the fifth floor with the others.",
    "Arthur thanked the thin author for the thirty thrilling theses.",
    "The weather this week was worse than the weather last month.",
    "Whether or not they agree, the theatre opens on the thirteenth.",
    "Please pass the salt and the pepper to the person on your left.",
    "Sixty stars shine softly above the silent sleeping city.",
    "That thoughtless thief stole three thousand thimbles.",
    "The path beneath the cliff is smooth, but the ascent is steep.",
    "Keith and Martha will both be there at the birthday party.",
    "Find the fine fabric that the family left behind the door.",
    "I think that the method is worth a thorough test this time.",
    "Other mothers gather their children together after school.",
    "Dinner is at nine, and then we'll watch the news at ten.",
    "The length and the width of the cloth are roughly the same.",
    "Three free throws threw the thrilled fans into a frenzy.",
    "Lots of little lights lit the long lane leading to the lake.",
    "The youth swore an oath to tell the truth in the south.",
    "So the sailor set the sails and sought the southern seas.",
    "Breathe in through the nose and out through the mouth.",
    "Neither the teacher nor the students thought it was worth it.",
    "They gathered at the theatre with their father and brother.",
    "Vivid visions of violet valleys filled the visitor's view.",
    "The fourth thing is that the earth goes round the sun.",
    "Don't bother with the other path; this one is faster.",
    "Twelve elves delved into the dells with shovels and sieves.",
    "Thirty thousand feathers fell from the thatch of the hut.",
    # Lips and nasals: /m b p w f v/ (and /s z/) against /n/ and the rest.
    "My mum may come home by May, or maybe by mid-summer.",
    "Bob bought a big brown bag of warm muffins for Mary.",
    "Mama, give my baby a warm cup of coffee.",
    "Many more men came among the bumpy hills at noon.",
    "We were away for a week by the warm blue bay.",
    "Sue sees six sacks of rice, and so she sighs.",
    "Peppermint, plum and mango make a fine summer pie.",
    "Nine new nurses now know my name.",
    "Wave by wave, the wide river moved by the meadow.",
    "Lemon, lime and melon mix well in a glass.",
]


def _frames(
    audio: np.ndarray,
    rate: int,
    phones: list[tuple[float, str]],
    dental: frozenset[str] | set[str] = DENTAL,
    alveolar: frozenset[str] | set[str] = ALVEOLAR,
):
    """Features, labels (0 neither, 1 interdental, 2 alveolar) and the speaking flag of
    each frame; ``phones`` are ``(start_s, label)`` in time order."""
    tracker = ProsodyTracker(rate, FPS)
    tracker.push(audio.astype(np.float32))
    n = int(np.floor(len(audio) * FPS / rate + 0.5))
    prosody = tracker.take(n, final=True)
    feats, _, _ = tongue_features(prosody, None, -100.0)
    starts = np.array([s for s, _ in phones])
    labels = np.zeros(n, np.int8)
    for i in range(n):
        j = int(np.searchsorted(starts, i / FPS, side="right")) - 1
        phone = phones[j][1].strip("ˈˌː") if j >= 0 else ""
        labels[i] = 1 if phone in dental else 2 if phone in alveolar else 0
    return feats, labels, prosody.speaking


def build_corpus(
    corpus: Path, split: str = "train", seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[str, str]]]:
    """Speech frames of every clip of ``split`` with phone timings (see the module
    doc), with a -55 dBFS noise floor as in :func:`build`; groups are (source, voice)."""
    import soundfile as sf

    manifest = corpus / "manifest.jsonl"
    if not manifest.exists():
        raise SystemExit(
            f"no corpus at {corpus}: build it with python -m training.data.build --out {corpus}"
        )
    rng = np.random.default_rng(seed)
    xs, ys, groups = [], [], []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        clip = json.loads(line)
        if clip.get("split") != split or not clip.get("phones"):
            continue
        audio, rate = sf.read(corpus / clip["wav"], dtype="float32")
        audio = audio + rng.normal(0, 10 ** (-55 / 20), audio.shape).astype(np.float32)
        phones = [(float(start), str(label)) for start, _, label in clip["phones"]]
        feats, labels, speaking = _frames(
            audio, rate, phones, UNIFIED_DENTAL, UNIFIED_ALVEOLAR
        )
        xs.append(feats[speaking])
        ys.append(labels[speaking])
        groups.append((str(clip["source"]), str(clip["voice"])))
    if not xs:
        raise SystemExit(f"{manifest} has no {split!r} clips with phone timings")
    return xs, ys, groups


def build(seed: int) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, str]]]:
    from audio2face.engines.phonemes.espeak import SynthOptions, synthesize

    rng = np.random.default_rng(seed)
    xs, ys, groups = [], [], []
    for si, text in enumerate(SENTENCES):
        for voice in VOICES:
            opts = SynthOptions(
                voice=voice,
                rate=int(rng.integers(140, 220)),
                pitch=int(rng.integers(30, 70)),
                pitch_range=int(rng.integers(30, 80)),
            )
            s = synthesize(text, opts)
            audio, rate = s.audio, s.sample_rate
            if rng.random() < 0.5:
                audio, rate = resample(audio, rate, 16000), 16000
            audio = audio + rng.normal(0, 10 ** (-55 / 20), audio.shape).astype(np.float32)
            feats, labels, speaking = _frames(audio, rate, s.raw_phones)
            xs.append(feats[speaking])
            ys.append(labels[speaking])
            groups.append((si, voice))
    return xs, ys, groups


def fit(
    x: np.ndarray, y: np.ndarray, hidden: int = 24, steps: int = 1500, seed: int = 0
) -> dict[str, np.ndarray]:
    """A one-hidden-layer network (tanh, softmax over the classes ``0..K-1``) with
    balanced class weights, by full-batch Adam on standardised ``x``. A linear model
    finds /θ ð/ but not the alveolars (held-out precision 0.66 at recall 0.34)."""
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    w1 = rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), (x.shape[1], hidden))
    w2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, k))
    params = {"w1": w1, "b1": np.zeros(hidden), "w2": w2, "b2": np.zeros(k)}
    weight = (len(y) / (k * np.bincount(y, minlength=k)))[y] / len(y)
    target = np.eye(k)[y]
    moments = {n: (np.zeros_like(v), np.zeros_like(v)) for n, v in params.items()}
    lr, l2 = 0.05, 1e-4
    for t in range(1, steps + 1):
        h = np.tanh(x @ params["w1"] + params["b1"])
        p = _softmax(h @ params["w2"] + params["b2"])
        g = (p - target) * weight[:, None]
        gh = (g @ params["w2"].T) * (1.0 - h * h)
        grads = {"w1": x.T @ gh + l2 * params["w1"], "b1": gh.sum(axis=0),
                 "w2": h.T @ g + l2 * params["w2"], "b2": g.sum(axis=0)}  # fmt: skip
        for name, grad in grads.items():
            m, v = moments[name]
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            params[name] -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return params


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def scores(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    hit = p >= threshold
    tp = int((hit & y).sum())
    precision = tp / max(int(hit.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    return {"threshold": threshold, "precision": round(precision, 3), "recall": round(recall, 3),
            "positives": int(y.sum()), "frames": len(y)}  # fmt: skip


def model_doc(x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """Standardisation and network fitted on ``x``, ``y``, as the JSON entries."""
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    params = fit((x - mean) / std, y.astype(np.intp), seed=seed)
    out = {"mean": mean, "std": std, **params}
    return {k: np.round(v, 5).tolist() for k, v in out.items()}


def evaluate(model: TongueModel, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """Per class, precision and recall of ``p >= threshold`` at the step's defaults."""
    opts = TongueOptions.model_validate({})
    p = model.probabilities(x.astype(np.float32))
    out = {}
    for j, name in enumerate(model.classes):
        label = CLASSES.index(name) + 1
        out[name] = scores(p[:, j], y == label, opts.thresholds()[name])
    return out


def main_corpus(corpus: Path, out: Path, seed: int) -> int:
    """A model trained on the corpus's training split, scored on its validation split
    when it has one (nothing is chosen on either: the settings are fixed;
    benchmarks/tongue_heldout.py reports the held-out voices)."""
    xs, ys, groups = build_corpus(corpus, "train", seed)
    cat = np.concatenate
    x, y = cat(xs), cat(ys)
    n_bands = int(x.shape[1] - 2) // 3
    head = {"classes": list(CLASSES), "n_bands": n_bands}
    doc = model_doc(x, y, seed)
    model = TongueModel.from_json({**head, **doc}, "trained")
    sources = sorted({f"{source} {voice}" for source, voice in groups})
    result: dict[str, object] = {
        "about": "interdental (TH DH) and alveolar (T D N L DX) frames against other "
        "speech frames; a 24-unit network over audio2face.postprocess.tongue.tongue_features; "
        f"made by python -m audio2face.postprocess.tongue_train --corpus on the training split "
        f"of the default model's corpus ({len(xs)} clips, {len(sources)} voices)",
        "voices": sources,
        "seed": seed,
        "train": evaluate(model, x, y),
    }
    if (corpus / "validation").is_dir():
        try:
            vx, vy, _ = build_corpus(corpus, "validation", seed)
            result["validation"] = evaluate(model, cat(vx), cat(vy))
        except SystemExit:
            pass  # a corpus without a validation split
    result.update({**head, **doc})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump({k: result[k] for k in ("train", "validation") if k in result}, sys.stdout, indent=1)
    print()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / BUILTIN_MODEL)
    ap.add_argument("--seed", type=int, default=0)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--espeak", action="store_true", help="the shipped model's data")
    source.add_argument("--corpus", type=Path, help="the default model's corpus folder")
    args = ap.parse_args(argv)
    if args.corpus is not None:
        return main_corpus(args.corpus, args.out, args.seed)
    xs, ys, groups = build(args.seed)
    order = np.random.default_rng(args.seed).permutation(len(SENTENCES))
    held = set(order[: len(SENTENCES) // 5].tolist())
    tr = [i for i, (g, _) in enumerate(groups) if g not in held]
    te = [i for i, (g, _) in enumerate(groups) if g in held]
    cat = np.concatenate
    xtr, ytr = cat([xs[i] for i in tr]), cat([ys[i] for i in tr])
    xte, yte = cat([xs[i] for i in te]), cat([ys[i] for i in te])
    n_bands = int(xs[0].shape[1] - 2) // 3
    head = {"classes": list(CLASSES), "n_bands": n_bands}
    doc = model_doc(xtr, ytr, args.seed)
    model = TongueModel.from_json({**head, **doc}, "trained")
    # A harder check: a voice never seen in training, on the held-out sentences.
    unseen = VOICES[-1]
    tr_v = [i for i in tr if groups[i][1] != unseen]
    te_v = [i for i in te if groups[i][1] == unseen]
    doc_v = model_doc(cat([xs[i] for i in tr_v]), cat([ys[i] for i in tr_v]), args.seed)
    model_v = TongueModel.from_json({**head, **doc_v}, "trained without the unseen voice")
    unseen_scores = evaluate(model_v, cat([xs[i] for i in te_v]), cat([ys[i] for i in te_v]))
    result = {
        "about": "interdental (/θ ð/) and alveolar (/t d n l ɾ/) frames against other "
        "speech frames; a 24-unit network over audio2face.postprocess.tongue.tongue_features; "
        "made by python -m audio2face.postprocess.tongue_train on espeak-ng speech",
        "voices": VOICES,
        "sentences": len(SENTENCES),
        "held_out_sentences": sorted(int(i) for i in held),
        "seed": args.seed,
        "train": evaluate(model, xtr, ytr),
        "held_out": evaluate(model, xte, yte),
        "held_out_unseen_voice": {"voice": unseen, **unseen_scores},
        **head,
        **doc,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump(
        {k: result[k] for k in ("train", "held_out", "held_out_unseen_voice")},
        sys.stdout,
        indent=1,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
