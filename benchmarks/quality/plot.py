"""Optional plot: aperture curves of several systems against the true phones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

Phone = tuple[float, float, str]


def plot_aperture(path: str | Path, curves: Mapping[str, npt.NDArray[np.floating]], fps: float,
                  phones: Sequence[Phone] | None = None, title: str = "") -> Path:
    """Save a PNG of aperture per system over time, with phone labels along the top."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # headless: benchmarks run on servers
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'audio2face[train]'") from exc
    fig, ax = plt.subplots(figsize=(14, 3.5))
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)) / fps, curve, label=name, lw=1.2)
    top = max((float(np.max(c)) for c in curves.values() if len(c)), default=1.0)
    for s, e, p in phones or ():
        if p != "SIL":
            ax.axvspan(s, e, color="0.92" if p not in {"P", "B", "M"} else "#fdd", zorder=0)
            ax.text(0.5 * (s + e), top * 1.02, p, ha="center", va="bottom", fontsize=6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("aperture")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
