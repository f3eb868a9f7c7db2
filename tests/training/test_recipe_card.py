"""``python -m training.recipe --card-only``: the card again from the last run's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import recipe


def test_card_only_without_a_full_run_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recipe, "WORK", tmp_path / "work")
    with pytest.raises(SystemExit, match=r"--card-only needs a full run's outputs first; missing: .*quality\.json"):
        recipe.main(["--card-only", "--corpus", str(tmp_path / "corpus")])
