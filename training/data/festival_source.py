"""Festival's ``voice_kal_diphone`` (festvox-kallpc16k) with segment timings.

One festival process renders a batch: a generated Scheme script synthesises
each utterance and saves its wave and ``utt.save.segs`` (segment *end* times,
radio/ARPAbet-like labels) to a temp folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio2face.engines.phonemes.espeak_phones import tile_phones
from audio2face.engines.phonemes.phoneset import SILENCE, normalize_phone
from training.data.corpus import (
    SAMPLE_RATE,
    Clip,
    normalize_level,
    pad,
    resample,
    validate_phones,
    write_clip,
)
from training.data.jobs import Item

__all__ = ["LICENCE", "available", "render_batch"]

LICENCE = (
    "festival + festvox-kallpc16k (CMU/CSTR free licence: use, modify, redistribute, incl. commercially, "
    "with copyright notice retained); generated audio"
)

# Festival's radio phone set -> unified set, for labels outside plain ARPAbet.
_FESTIVAL_EXTRA = {"ax": "AH", "axr": "ER", "ix": "IH", "dx": "D", "nx": "N", "el": "L", "em": "M", "en": "N",
                   "pau": SILENCE, "h#": SILENCE, "#": SILENCE}  # fmt: skip


def available() -> bool:
    return shutil.which("festival") is not None and Path("/usr/share/festival/voices/english/kal_diphone").exists()


def map_phone(label: str) -> str:
    return _FESTIVAL_EXTRA.get(label.lower()) or normalize_phone(label)


def _scheme_text(text: str) -> str:
    return re.sub(r'["\\]', " ", text)


def read_segs(path: Path) -> list[tuple[float, str]]:
    """``utt.save.segs`` lines are ``<end_time> <int> <phone>`` after a ``#`` header."""
    ends = []
    body = path.read_text("utf-8", errors="ignore").split("#", 1)[-1]
    for line in body.splitlines():
        parts = line.split()
        if len(parts) == 3:
            ends.append((float(parts[0]), parts[2]))
    return ends


def render_batch(items: tuple[Item, ...], root: Path) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="a2f_fest_") as tmp:
        lines = ["(voice_kal_diphone)"]
        for k, item in enumerate(items):
            params = dict(item.params)
            lines += [
                f"(Parameter.set 'Duration_Stretch {params['stretch']:.3f})",
                f"(set! int_lr_params '((target_f0_mean {params['f0']:.1f}) (target_f0_std {params['f0_std']:.1f})"
                " (model_f0_mean 170) (model_f0_std 34)))",
                f'(set! u (Utterance Text "{_scheme_text(item.text)}"))',
                "(utt.synth u)",
                f'(utt.save.wave u "{tmp}/{k}.wav" \'riff)',
                f'(utt.save.segs u "{tmp}/{k}.segs")',
            ]
        script = Path(tmp) / "batch.scm"
        script.write_text("\n".join(lines) + "\n", "utf-8")
        subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True, timeout=600)
        records = []
        for k, item in enumerate(items):
            wav, segs = Path(tmp) / f"{k}.wav", Path(tmp) / f"{k}.segs"
            if not (wav.exists() and segs.exists()):
                continue
            audio, sr = sf.read(wav, dtype="float32")
            audio = resample(np.asarray(audio, np.float32), sr)
            records.append(_finish(item, audio, read_segs(segs), root))
        return records


def _finish(item: Item, audio: np.ndarray, ends: list[tuple[float, str]], root: Path) -> dict[str, object]:
    duration = len(audio) / SAMPLE_RATE
    starts, prev = [], 0.0
    for end, label in ends:
        starts.append((prev, (map_phone(label),)))
        prev = end
    phones = tile_phones(starts, duration)
    audio, padded = pad(normalize_level(audio, item.peak), phones, item.lead_s, item.trail_s)
    if padded is None:
        raise RuntimeError("phones lost while padding")
    validate_phones(padded, len(audio) / SAMPLE_RATE)
    clip = Clip(
        id=item.id, split=item.split, source="festival-kal", voice="kal_diphone", lang="en",
        text=item.text, text_source=item.text_source, licence=LICENCE, duration=len(audio) / SAMPLE_RATE,
        phones=padded,
    )  # fmt: skip
    return write_clip(root, clip, audio)
