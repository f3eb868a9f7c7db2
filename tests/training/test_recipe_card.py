"""``python -m training.recipe``: the card again from the last run's outputs (``--card-only``),
and the corpus built from a text lock (``--text-lock``)."""

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


class _Stop(Exception):
    pass


@pytest.mark.parametrize("lock", [None, "training/data/text-lock.json"])
def test_the_recipe_builds_the_corpus_from_a_lock_when_given_one(
    lock: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def run(args: list[str]) -> None:
        calls.append(args)
        raise _Stop  # the build is all this test is about

    monkeypatch.setattr(recipe, "_run", run)
    monkeypatch.setattr(recipe, "WORK", tmp_path / "work")
    with pytest.raises(_Stop):
        recipe.main(["--corpus", str(tmp_path / "c")] + (["--text-lock", lock] if lock else []))
    assert calls == [["-m", "training.data.build", "--out", str(tmp_path / "c")]
                     + (["--text-lock", lock] if lock else [])]
