"""The tongue classifier's corpus mode reads the default model's corpus format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio2face.postprocess.tongue_train import build_corpus


def _clip(root, split: str, name: str, phones: list) -> dict:
    rng = np.random.default_rng(len(name))
    audio = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    (root / split).mkdir(exist_ok=True)
    sf.write(root / split / f"{name}.wav", audio, 16000)
    return {"id": name, "split": split, "source": "festival", "voice": name,
            "phones": phones, "wav": f"{split}/{name}.wav"}  # fmt: skip


def test_corpus_frames_are_labelled_from_unified_phones(tmp_path) -> None:
    phones = [[0.0, 0.2, "AH"], [0.2, 0.4, "TH"], [0.4, 0.6, "T"], [0.6, 0.8, "S"], [0.8, 1.0, "N"]]
    rows = [
        _clip(tmp_path, "train", "a", phones),
        _clip(tmp_path, "heldout", "b", phones),  # another split: left out
        _clip(tmp_path, "train", "c", []),  # no phone timings: left out
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    xs, ys, groups = build_corpus(tmp_path, "train")
    assert groups == [("festival", "a")]
    assert xs[0].shape[0] == ys[0].shape[0] and xs[0].shape[1] == 3 * 24 + 2
    # Frames are speech only (noise loud enough to count), labelled by the phone at i / 30.
    assert set(np.unique(ys[0]).tolist()) == {0, 1, 2}


def test_a_missing_corpus_says_how_to_build_it(tmp_path) -> None:
    with pytest.raises(SystemExit, match="python -m training.data.build"):
        build_corpus(tmp_path / "nothing")
