"""Phone timings as JSON: what a TTS engine knows about its own speech.

::

    {"phones": [[0.00, 0.12, "SIL"], [0.12, 0.20, "HH"], [0.20, 0.31, "AH1"]], "duration_s": 0.5}

Labels are ARPAbet (stress digits allowed) or the unified phone set; times are seconds
from the first sample. ``duration_s`` defaults to the end of the last phone.
"""

from __future__ import annotations

import json
from pathlib import Path

from audio2face.engines.phonemes.phoneset import PHONES, normalize_phone
from audio2face.errors import UnknownNameError
from audio2face.types import Phone

__all__ = ["TIMINGS_FORMAT", "read_timings"]

TIMINGS_FORMAT = '{"phones": [[start_s, end_s, "AA"], ...], "duration_s": 1.2}'


def read_timings(path: Path, *, where: str | None = None) -> tuple[list[Phone], float]:
    """Phone timings (TTS output) and the duration from a JSON file at ``path``. Raises ``ValueError`` naming the
    file and the expected shape, or :class:`UnknownNameError` for a phone label outside
    the phone set (with the known ones)."""
    where = where or repr(str(path))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{where} not found; check the path") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not UTF-8 text; expected JSON {TIMINGS_FORMAT}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"expected {TIMINGS_FORMAT}"
        ) from None
    rows = doc.get("phones") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f'{where} has no "phones" list; expected {TIMINGS_FORMAT}')
    phones: list[Phone] = []
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[2], str)):
            raise ValueError(f'{where}: phones[{i}] is {row!r}; expected [start_s, end_s, "AA"]')
        try:
            start, end = float(row[0]), float(row[1])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: phones[{i}] has non-numeric times {row[:2]!r}") from None
        try:
            normalize_phone(row[2])
        except UnknownNameError:
            raise UnknownNameError(
                "phone", row[2], list(PHONES), where=f"{where} phones[{i}]",
                hint="ARPAbet labels; stress digits (AA1) are allowed",
            ) from None  # fmt: skip
        phones.append((start, end, row[2]))
    try:
        duration = float(doc.get("duration_s", phones[-1][1] if phones else 0.0))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: duration_s must be a number of seconds") from None
    return phones, duration
