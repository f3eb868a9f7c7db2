"""``--real-weight`` (issue 12, session 11): the real speaker's (Asterisk) renders are drawn
that many times as often as a synthetic voice's of the same length; 1 is 2.1.0's recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from training.train import Example, real_speaker_mask, sampling_probs


def test_weight_one_is_the_recipes_proportions_exactly() -> None:
    lengths = np.array([100, 300, 66, 50, 1000])
    old = np.maximum(lengths - 66, 1).astype(np.float64)
    old /= old.sum()  # what train() computed before the flag
    real = np.array([True, False, False, True, False])
    assert np.array_equal(sampling_probs(lengths, 66), old)
    assert np.array_equal(sampling_probs(lengths, 66, real, 1.0), old)


def test_the_weight_scales_the_real_speakers_draws() -> None:
    lengths = np.array([166, 166, 266, 166])
    real = np.array([True, False, False, True])
    p = sampling_probs(lengths, 66, real, 3.0)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(3.0)  # same length, real three times as often
    assert p[2] / p[1] == pytest.approx(2.0)  # synthetic voices keep their length proportions
    assert p[0] == p[3]
    assert sampling_probs(lengths, 66, real, 0.0)[real].sum() == 0.0
    with pytest.raises(ValueError):
        sampling_probs(lengths, 66, None, 2.0)  # a weight with nothing to weigh is an error
    with pytest.raises(ValueError):
        sampling_probs(lengths, 66, real[:2], 2.0)


def test_the_mask_follows_the_render_order(tmp_path: Path) -> None:
    recs = [
        {"split": "train", "phones": [[0, 0.1, "m"]], "source": "espeak-en", "wav": "a.wav"},
        {"split": "train", "phones": [], "source": "asterisk-es", "wav": "b.wav"},  # no phones: not rendered
        {"split": "validation", "phones": [[0, 0.1, "m"]], "source": "asterisk-en", "wav": "c.wav"},
        {"split": "train", "phones": [[0, 0.1, "m"]], "source": "asterisk-en", "wav": "d.wav"},
        {"split": "train", "phones": [[0, 0.1, "m"]], "source": "festival-kal", "wav": "e.wav"},
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), "utf-8")
    assert real_speaker_mask(tmp_path, 2).tolist() == [False, False, True, True, False, False]
    assert real_speaker_mask(tmp_path, 1, limit=2).tolist() == [False, True]


def test_the_flag_reaches_training_and_moves_the_draws() -> None:
    """The flag from the command line changes which examples train() draws (this fails if
    the option were parsed but not used)."""
    pytest.importorskip("torch", reason="training needs torch: pip install -e '.[train]'")
    from training.train import build_parser, options_from_args, train

    assert options_from_args(build_parser().parse_args([])).real_weight == 1.0
    rng = np.random.default_rng(0)
    examples = [Example(rng.normal(-5, 1, (150, 40)).astype(np.float32),
                        rng.random((150, 52)).astype(np.float32), np.ones(150, np.float32))
                for _ in range(8)]  # fmt: skip
    real = np.array([True] + [False] * 7)  # one real example of eight: 1/8 of the draws at weight 1
    shares = {}
    for w in ("1", "7"):
        opts = options_from_args(build_parser().parse_args(
            ["--real-weight", w, "--steps", "25", "--batch", "16", "--threads", "1", "--ema-decay", "0"]))  # fmt: skip
        _, info = train(examples, opts, real=real)
        shares[w] = info["real_speaker"]
        assert shares[w]["examples"] == 1 and shares[w]["weight"] == float(w)
    assert shares["1"]["expected_share"] == pytest.approx(1 / 8, abs=1e-4)
    assert shares["7"]["expected_share"] == pytest.approx(7 / 14, abs=1e-4)
    assert shares["1"]["drawn_share"] < 0.25 < 0.35 < shares["7"]["drawn_share"]
