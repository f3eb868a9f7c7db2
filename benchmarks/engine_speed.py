"""Speed of the default engine alone, on one core, on real audio.

    python benchmarks/engine_speed.py [--wav clip.wav ...] [--seconds 60] [--out result.json]

Streams real speech (held-out corpus clips, else asterisk prompts, else espeak-ng)
through ``DefaultEngine`` with onnxruntime ``intra_op_threads=1`` and numpy/BLAS
limited to one thread, including log-mel extraction, in several chunk sizes, and
reports the real-time factor (audio seconds per compute second). The engine runs its
streaming graph (per-layer caches), so every push computes only its new outputs.
"""

from __future__ import annotations

import os

# One core: must be set before numpy / onnxruntime load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - after the thread limits on purpose
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def real_audio(paths: list[Path], seconds: float) -> np.ndarray:
    """Concatenate real speech clips up to ``seconds``."""
    import soundfile as sf
    import soxr

    if not paths:
        held = ROOT / "data" / "corpus" / "heldout"
        paths = sorted(held.glob("*.wav")) if held.is_dir() else []
    if not paths:
        paths = sorted(Path("/usr/share/asterisk/sounds/en").rglob("*.wav"))[:200]
    parts, total = [], 0
    for p in paths:
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        if sr != 16000:
            x = soxr.resample(x, sr, 16000).astype(np.float32)
        parts.append(x)
        total += len(x)
        if total >= seconds * 16000:
            break
    if not parts:
        from audio2face.engines.phonemes.espeak import synthesize

        s = synthesize("The quick brown fox jumps over the lazy dog. " * 8)
        parts = [soxr.resample(s.audio, s.sample_rate, 16000).astype(np.float32)]
    audio = np.concatenate(parts)
    reps = int(np.ceil(seconds * 16000 / len(audio)))
    return np.tile(audio, reps)[: int(seconds * 16000)]


def measure(engine, audio: np.ndarray, chunk: int | None, repeats: int = 3) -> float:  # noqa: ANN001
    """Best-of-``repeats`` real-time factor streaming ``audio`` in ``chunk`` samples."""
    best = float("inf")
    for _ in range(repeats):
        stream = engine.open_stream()
        t0 = time.perf_counter()
        if chunk is None:
            stream.push(audio)
        else:
            for i in range(0, len(audio), chunk):
                stream.push(audio[i : i + chunk])
        stream.finish()
        best = min(best, time.perf_counter() - t0)
    return len(audio) / 16000 / best


def main(argv: list[str] | None = None) -> int:
    from audio2face.engines.default import load_default_engine
    from audio2face.engines.onnx import OrtOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav", type=Path, nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    # One stream: one model run at a time, behind the concurrency cap as in the server.
    engine = load_default_engine(ort_options=OrtOptions(providers="cpu"), workers=1)
    audio = real_audio(args.wav, args.seconds)
    engine.open_stream().push(audio[:16000])  # warm up the session
    rows = {}
    for label, chunk in (("whole", None), ("1000ms", 16000), ("100ms", 1600), ("20ms", 320)):
        rows[label] = round(measure(engine, audio, chunk), 1)
    doc = {
        "realtime_factor": rows["100ms"],
        "note": "100 ms chunks, streaming graph with per-layer caches, onnxruntime intra_op_threads=1, "
                "log-mel included",
        "by_chunk": rows,
        "audio_seconds": round(len(audio) / 16000, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} cores visible)".strip(),
        "python": platform.python_version(),
    }
    print(json.dumps(doc, indent=1))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
