"""What the "alive" steps cost and what they do, on espeak-ng speech.

    python benchmarks/alive.py [--seconds 120] [--streams 64] [--repeats 10]
                               [--batch-wait-ms MS] [--out benchmarks/results/alive.json]
                               [--plot FILE]

One stream, one core. Speech: espeak-ng sentences (several voices) joined by pauses
of 0.3-1.2 s, at 16 kHz, pushed in 40 ms bodies as a client sends them.

* **Cost, as a server pays it** (``--streams``, default 64): that many streams push
  40 ms bodies of speech through the runtime's pusher (the server's batching layer,
  as ``benchmarks/batching.py`` does, with the service's batch wait unless
  ``--batch-wait-ms`` says otherwise), once with the ``arkit`` profile (lips only)
  and once with ``arkit-head`` (every alive feature), in 4-second runs alternating
  ``--repeats`` times; the result is the process's CPU time per audio second per
  stream, and the alive features' share is the median of (head - arkit) over arkit:
  their cost against the default engine's per-stream cost, measured the same way
  next to it.
* **Cost of one stream alone**: CPU seconds per audio second of (a) the default
  engine stream, (b) the ``arkit-head`` chain with every alive feature off and no
  prosody (the classic chain), (c) the prosody tracker plus the same chain with
  everything on; the alive cost is (c) - (b) against (a). A lone stream pays numpy's
  per-call overhead for a frame or two at a time, so this is the worst case.
* **Behaviour**: blink rate and durations; saccade rate, amplitudes and fixation
  durations against the statistics the gaze step cites; head-motion amplitude and
  its correlation with speech energy; ``tongueOut`` recall on /θ ð/ and on /t d n l/
  frames and its precision over both (espeak's phone timings), beside the tongue
  model's held-out scores; how much the lips change with everything on.

The behaviour part runs one stream for ``--seconds`` of audio.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - after the thread limits on purpose
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RATE = 16000
FPS = 30.0
CHUNK = 640  # 40 ms
TEXTS = [
    "Good morning. I wanted to tell you about the trip we took last weekend.",
    "We drove up through the mountains, and the weather was absolutely perfect.",
    "Honestly, I think it was the best three days I have had all year.",
    "There is a small lake there, with a path that goes all the way around it.",
    "Then, on the second day, something rather strange happened.",
    "My brother thought he saw a bear, but it was only a very large dog!",
    "We laughed about that for hours. Anyway, what have you been up to?",
    "Let me know if you want to come with us next time; there is plenty of room.",
]
VOICES = ["en-us", "en-us+m3", "en+f4", "en-gb-x-rp"]


def speech(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Audio at 16 kHz and a per-frame label: 1 where the phone is /θ ð/, 2 where it is
    alveolar /t d n l ɾ/ (the tongue step's classes), 0 elsewhere."""
    import soxr

    from audio2face.engines.phonemes.espeak import SynthOptions, synthesize
    from audio2face.postprocess.tongue_train import ALVEOLAR, DENTAL

    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    spans: list[tuple[float, float, int]] = []
    total = 0
    i = 0
    while total < seconds * RATE:
        s = synthesize(TEXTS[i % len(TEXTS)], SynthOptions(voice=VOICES[i % len(VOICES)],
                                                          rate=int(rng.integers(150, 200))))  # fmt: skip
        x = soxr.resample(s.audio, s.sample_rate, RATE).astype(np.float32)
        t0 = total / RATE
        for (a, label), nxt in zip(
            s.raw_phones, [*s.raw_phones[1:], (s.duration, "")], strict=True
        ):
            phone = label.strip("ˈˌː")
            if phone in DENTAL or phone in ALVEOLAR:
                spans.append((t0 + a, t0 + nxt[0], 1 if phone in DENTAL else 2))
        pause = np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32)
        parts += [x, pause]
        total += x.shape[0] + pause.shape[0]
        i += 1
    audio = np.concatenate(parts)[: int(seconds * RATE)]
    audio = audio + np.random.default_rng(1).normal(0, 1e-4, audio.shape).astype(np.float32)
    n = int(np.floor(audio.shape[0] * FPS / RATE + 0.5))
    t = np.arange(n) / FPS
    label = np.zeros(n, np.int8)
    for a, b, c in spans:
        label[(t >= a) & (t < b)] = c
    return audio, label


def cpu(fn) -> float:  # noqa: ANN001
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def server_cost(
    streams: int,
    repeats: int,
    pushes: int = 100,
    batch_wait_ms: float | None = None,
    before_run: Callable[[str], None] | None = None,
) -> dict:
    """CPU ms per audio second per stream through the runtime's pusher, ``arkit``
    (lips only) against ``arkit-head`` (everything alive), in short runs that
    alternate (the VM's speed drifts by tens of percent within minutes: only runs next
    to each other compare); the share is the median of the pairs' differences over the
    median ``arkit`` cost. ``before_run`` is told each measured run's profile."""
    import asyncio

    from audio2face.bench import WIRE_RATE, load_speech
    from audio2face.runtime import Runtime
    from audio2face.settings import Settings

    audio = load_speech().astype(np.float32) / 32768.0
    body = int(0.04 * WIRE_RATE)
    # The service's batching (batch_wait_ms 2 by default). With 0 the batches form by
    # thread timing: a pusher busier per batch (alive work, during which the event loop
    # runs, as the kernels release the GIL) splits a round of pushes into more, smaller
    # batches and pays the engine's per-batch cost twice, which is the benchmark's closed
    # loop and not what paced clients see.
    wait = Settings().batch_wait_ms if batch_wait_ms is None else batch_wait_ms
    runtime = Runtime.start(Settings(max_batch_size=64, batch_wait_ms=wait))
    pusher = runtime.pushers["default"]

    def run(profile: str, n_pushes: int, offset: int) -> float:
        async def stream(k: int) -> None:
            session, _ = runtime.open_session(profile, WIRE_RATE, seed=k)
            pos = ((k * 7919 + offset) * body) % (len(audio) - body)
            for _ in range(n_pushes):
                await pusher.push(session, audio[pos : pos + body])
                pos = (pos + body) % (len(audio) - body)

        async def main() -> None:
            await asyncio.gather(*(stream(k) for k in range(streams)))

        spent = cpu(lambda: asyncio.run(main()))
        return 1000.0 * spent / (streams * n_pushes * body / WIRE_RATE)

    runs: dict[str, list[float]] = {"arkit": [], "arkit-head": []}
    try:
        for profile in runs:
            run(profile, 10, 0)  # warm up
        for r in range(repeats):
            for profile, got in runs.items():
                if before_run is not None:
                    before_run(profile)
                got.append(run(profile, pushes, r * pushes))
    finally:
        runtime.close()
    lips = float(np.median(runs["arkit"]))
    extra = float(np.median(np.subtract(runs["arkit-head"], runs["arkit"])))
    return {
        "streams": streams,
        "batch_wait_ms": wait,
        "runs_ms_cpu_per_audio_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "engine_arkit_per_stream": round(lips, 3),
        "alive_extra": round(extra, 3),
        "alive_share_of_engine": round(extra / lips, 3),
        "alive_share_quartiles": [
            round(float(q) / lips, 3)
            for q in np.percentile(np.subtract(runs["arkit-head"], runs["arkit"]), [25, 75])
        ],
    }


def main(argv: list[str] | None = None) -> int:
    from audio2face.audio.prosody import ProsodyTracker
    from audio2face.engines.default import load_default_engine
    from audio2face.engines.onnx import OrtOptions
    from audio2face.postprocess import StreamOptions
    from audio2face.profiles import ProfileRegistry

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--streams", type=int, default=64, help="streams of the server cost run")
    ap.add_argument("--repeats", type=int, default=10, help="alternating runs per profile")
    ap.add_argument("--batch-wait-ms", type=float, default=None,
                    help="the pusher's batch wait (default: the service's, 2 ms)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args(argv)

    audio, phones = speech(args.seconds)
    seconds = audio.shape[0] / RATE
    engine = load_default_engine(None, OrtOptions(providers="cpu", intra_op_threads=1))
    engine.open_stream().push(audio[:RATE])  # warm up
    chunks = [audio[i : i + CHUNK] for i in range(0, audio.shape[0], CHUNK)]
    raw: list[np.ndarray] = []

    def run_engine() -> None:
        stream = engine.open_stream()
        raw.clear()
        raw.extend(stream.push(c) for c in chunks)
        raw.append(stream.finish())

    engine_s = min(cpu(run_engine) for _ in range(2))
    chunks.append(np.zeros(0, np.float32))  # pairs with the finish() frames
    chain = ProfileRegistry(engines=("default",)).get("arkit-head").build_chain()
    outs: dict[str, list[np.ndarray]] = {"off": [], "on": []}
    saccades: list[tuple[int, float]] = []
    prosody_parts = []

    def run_chain(on: bool) -> None:
        options = StreamOptions() if on else StreamOptions.all_off()
        stream = chain.new_stream(7, options)
        tracker = ProsodyTracker(RATE, FPS) if on else None
        out = outs["on" if on else "off"]
        out.clear()
        for k, (c, frames) in enumerate(zip(chunks, raw, strict=True)):
            p = None
            if tracker is not None:
                tracker.push(c)
                p = tracker.take(frames.shape[0], final=k == len(raw) - 1)
            first = stream.frame_index
            out.append(stream(frames, None, p))
            if on and p is not None:
                prosody_parts.append(p)
                amp = stream.events.get("saccade_deg")
                if amp is not None:
                    saccades.extend((first + int(i), float(amp[i])) for i in np.flatnonzero(amp))

    classic_s = min(cpu(lambda: run_chain(False)) for _ in range(2))
    alive_runs = []
    for _ in range(2):  # best of two, like the others; the statistics use the last run
        saccades.clear()
        prosody_parts.clear()
        alive_runs.append(cpu(lambda: run_chain(True)))
    alive_s = min(alive_runs)
    from audio2face.audio.prosody import Prosody

    pros = Prosody.concat(prosody_parts)
    on, off = np.concatenate(outs["on"]), np.concatenate(outs["off"])
    names = chain.output_names
    col = {n: i for i, n in enumerate(names)}
    n = on.shape[0]

    # -- blinks -------------------------------------------------------------------------
    lid = on[:, col["eyeBlinkLeft"]]
    onsets = np.flatnonzero((lid[1:] > 0.05) & (lid[:-1] <= 0.05)) + 1
    durs, closes, opens = [], [], []
    for o in onsets:
        seg = lid[o - 1 : o + 20]
        peak = int(np.argmax(seg))
        end = peak + int(np.argmax(seg[peak:] <= 0.05))
        durs.append(end / FPS)
        closes.append(peak / FPS)
        opens.append((end - peak) / FPS)
    speaking = pros.speaking[:n]
    bounds = np.flatnonzero(pros.phrase_end | pros.phrase_start)
    near = np.zeros(n, bool)
    for b in bounds:
        near[b : b + int(0.4 * FPS)] = True
    blinks = {
        "per_min": round(60 * len(onsets) / seconds, 1),
        "per_min_while_speaking": round(
            60 * speaking[onsets].sum() / max(speaking.sum() / FPS, 1e-9), 1
        ),
        "duration_ms_mean": round(1000 * float(np.mean(durs)), 0),
        "close_ms_mean": round(1000 * float(np.mean(closes)), 0),
        "open_ms_mean": round(1000 * float(np.mean(opens)), 0),
        "share_within_0.4s_of_a_phrase_boundary": round(float(near[onsets].mean()), 2),
        "chance_share": round(float(near.mean()), 2),
    }
    # -- gaze ---------------------------------------------------------------------------
    frames = np.array([f for f, _ in saccades])
    amps = np.array([a for _, a in saccades])
    sac_dur = (21.0 + 2.2 * amps) / 1000.0
    gaps = np.diff(frames) / FPS - sac_dur[:-1]
    big = amps[amps >= 2.0]
    gaze = {
        "saccades_per_s": round(len(amps) / seconds, 2),
        "fixation_s_mean": round(float(gaps.mean()), 3),
        "fixation_s_median": round(float(np.median(gaps)), 3),
        "cited_fixation_s_mean": 0.33,
        "amplitude_deg_mean_all": round(float(amps.mean()), 2),
        "amplitude_deg_mean_of_shifts_over_2deg": round(float(big.mean()), 2),
        "share_of_shifts_at_most_15deg": round(float((big <= 15).mean()), 3),
        "cited_share_at_most_15deg": 0.86,
        "saccade_ms_for_10deg": 43.0,
        "peak_velocity_deg_s_at_10deg": round(1.875 * 10 / 0.043, 0),
    }
    # -- head ---------------------------------------------------------------------------
    head = on[:, [col["headYaw"], col["headPitch"], col["headRoll"]]]
    speed = np.linalg.norm(np.diff(head, axis=0), axis=1) * FPS
    energy = pros.rms_db[1:n]
    k = int(0.3 * FPS)
    smooth = np.convolve(speed, np.ones(k) / k, mode="same")
    head_doc = {
        "sd_deg_speaking": [round(float(v), 2) for v in head[speaking].std(axis=0)],
        "sd_deg_pauses": [round(float(v), 2) for v in head[~speaking].std(axis=0)],
        "max_abs_deg": [round(float(v), 2) for v in np.abs(head).max(axis=0)],
        "corr_speed_energy": round(float(np.corrcoef(smooth, energy)[0, 1]), 3),
    }
    # -- tongue -------------------------------------------------------------------------
    from audio2face.postprocess.tongue import builtin_model

    shown = on[:, col["tongueOut"]] > 0.1
    m = min(n, phones.shape[0])
    shown, label = shown[:m], phones[:m]
    meta = builtin_model().meta

    def pr(hit: np.ndarray, truth: np.ndarray) -> dict:
        tp = int((hit & truth).sum())
        return {"precision": round(tp / max(int(hit.sum()), 1), 3),
                "recall": round(tp / max(int(truth.sum()), 1), 3), "frames": int(truth.sum())}  # fmt: skip

    tongue = {
        "bench_shown_vs_tongue_frames": pr(shown, label > 0),
        "bench_recall_interdental": pr(shown, label == 1)["recall"],
        "bench_recall_alveolar": pr(shown, label == 2)["recall"],
        "bench_shown_outside_tongue_sounds": round(float((shown & (label == 0)).mean()), 3),
        "held_out": meta.get("held_out"),
        "held_out_unseen_voice": meta.get("held_out_unseen_voice"),
    }
    # -- lips ---------------------------------------------------------------------------
    lips = [i for i, nm in enumerate(names) if nm.startswith(("jaw", "mouth"))]
    no_arousal = []
    st = chain.new_stream(7, StreamOptions(off=frozenset({"arousal"})))
    tr = ProsodyTracker(RATE, FPS)
    for kk, (c, fr) in enumerate(zip(chunks, raw, strict=True)):
        tr.push(c)
        no_arousal.append(st(fr, None, tr.take(fr.shape[0], final=kk == len(raw) - 1)))
    na = np.concatenate(no_arousal)
    lips_doc = {
        "max_abs_change_all_on": round(float(np.abs(on[:, lips] - off[:, lips]).max()), 4),
        "mean_ratio_all_on": round(float(on[:, lips].mean() / max(off[:, lips].mean(), 1e-9)), 3),
        "max_abs_change_arousal_off": round(float(np.abs(na[:, lips] - off[:, lips]).max()), 6),
    }
    alive_ms = 1000 * (alive_s - classic_s) / seconds
    doc = {
        "audio_seconds": round(seconds, 1),
        "cost_server_ms_cpu_per_audio_s": server_cost(
            args.streams, args.repeats, batch_wait_ms=args.batch_wait_ms
        ),
        "cost_one_stream_ms_cpu_per_audio_s": {
            "engine_one_stream": round(1000 * engine_s / seconds, 2),
            "classic_chain": round(1000 * classic_s / seconds, 2),
            "alive_extra": round(alive_ms, 2),
            "alive_share_of_engine_one_stream": round(alive_ms / (1000 * engine_s / seconds), 3),
        },
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "blinks": blinks,
        "gaze": gaze,
        "head": head_doc,
        "tongue": tongue,
        "lips": lips_doc,
    }
    print(json.dumps(doc, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
    if args.plot:
        plot(args.plot, on, col, pros, amps, gaps)
    return 0


def plot(path: Path, on: np.ndarray, col: dict, pros, amps: np.ndarray, gaps: np.ndarray) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    t = np.arange(on.shape[0]) / FPS
    w = t < 20
    a = ax[0, 0]
    a.plot(t[w], pros.rms_db[: on.shape[0]][w], color="0.7", label="level (dBFS)")
    a2 = a.twinx()
    for name in ("headYaw", "headPitch", "headRoll"):
        a2.plot(t[w], on[w, col[name]], label=name)
    a2.set_ylabel("degrees")
    a.set_xlabel("s")
    a2.legend(loc="upper right", fontsize=7)
    a.set_title("head pose and speech level (first 20 s)")
    a = ax[0, 1]
    a.plot(t[w], on[w, col["eyeBlinkLeft"]], label="eyeBlink")
    a.plot(
        t[w], on[w, col["eyeLookOutLeft"]] - on[w, col["eyeLookInLeft"]], label="gaze left-right"
    )
    a.plot(t[w], on[w, col["tongueOut"]], label="tongueOut")
    a.fill_between(t[w], 0, pros.speaking[: on.shape[0]][w] * 0.05, color="0.8", label="speaking")
    a.legend(fontsize=7)
    a.set_title("blinks, gaze, tongue (first 20 s)")
    a = ax[1, 0]
    big = amps[amps >= 2.0]
    a.hist(big, bins=np.arange(0, 27, 1.0), density=True, alpha=0.7, label="gaze shifts >= 2 deg")
    x = np.linspace(2, 26, 100)
    a.plot(x, np.exp(-(x - 2) / 6.9) / 6.9, label="2 + Exp(6.9 deg) (Lee et al. 2002)")
    a.set_xlabel("amplitude (deg)")
    a.legend(fontsize=7)
    a.set_title("saccade amplitudes")
    a = ax[1, 1]
    a.hist(gaps, bins=np.arange(0, 1.5, 0.05), density=True, alpha=0.7, label="fixations")
    x = np.linspace(0.01, 1.5, 100)
    k, theta = 3.0, 0.33 / 3.0
    from math import gamma

    a.plot(
        x, x ** (k - 1) * np.exp(-x / theta) / (gamma(k) * theta**k), label="Gamma(3), mean 0.33 s"
    )
    a.set_xlabel("s")
    a.legend(fontsize=7)
    a.set_title("fixation durations")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    raise SystemExit(main())
