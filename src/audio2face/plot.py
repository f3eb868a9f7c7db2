"""``audio2face plot``: a picture of what the model did, before wiring an avatar.

One figure, one time axis: the waveform on top, then the main mouth channels (jawOpen,
mouthClose, mouthFunnel, mouthPucker, mouthSmile as the mean of left and right), then
the blinks. The input is an audio file (animated in-process) or saved frames (``.npz``,
``.json``, ``.csv``, ``.vmd``; ``--audio`` adds their waveform). matplotlib is an
optional extra, imported only here.

Wired into the main CLI with::

    from audio2face import plot
    plot.add_arguments(sub.add_parser("plot", help=plot.HELP))
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio2face.formats import load_frames, supported_extensions
from audio2face.types import FloatArray, FrameBatch

__all__ = ["HELP", "PlotOptions", "add_arguments", "plot_frames", "run"]

HELP = "draw the waveform, mouth channels and blinks of a file on one time axis"
PLOT_HINT = "pip install 'audio2face[plot]'"
MOUTH: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jawOpen", ("jawOpen",)),
    ("mouthClose", ("mouthClose",)),
    ("mouthFunnel", ("mouthFunnel",)),
    ("mouthPucker", ("mouthPucker",)),
    ("mouthSmile", ("mouthSmileLeft", "mouthSmileRight")),
)
BLINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("eyeBlinkLeft", ("eyeBlinkLeft",)),
    ("eyeBlinkRight", ("eyeBlinkRight",)),
)
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg")


@dataclass(frozen=True, slots=True)
class PlotOptions:
    width_in: float = 12.0
    height_in: float = 7.0
    dpi: int = 100
    title: str = ""


def _import_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"plot needs matplotlib: {PLOT_HINT}") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def _series(
    batch: FrameBatch, groups: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[str, FloatArray]]:
    """Each group's channel (the mean of its members), matched without case."""
    by_key = {name.lower(): i for i, name in enumerate(batch.names)}
    out = []
    for label, members in groups:
        cols = [by_key[m.lower()] for m in members if m.lower() in by_key]
        if cols:
            out.append((label, batch.values[:, cols].mean(axis=1)))
    return out


def plot_frames(
    batch: FrameBatch,
    path: str | Path,
    *,
    audio: tuple[FloatArray, int] | None = None,
    channels: Sequence[str] | None = None,
    options: PlotOptions = PlotOptions(),
) -> None:
    """Draw ``batch`` (and ``audio``, ``(samples, rate)``) into the image ``path``.

    ``channels`` replaces the mouth group with these names (for MMD or VRM profiles)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot draw into {path.name!r}: use one of {list(IMAGE_SUFFIXES)}")
    if channels:
        missing = [c for c in channels if c not in batch.names]
        if missing:
            raise ValueError(
                f"no channel {missing[0]!r} in these frames; they have {list(batch.names)}"
            )
        mouth = _series(batch, [(c, (c,)) for c in channels])
    else:
        mouth = _series(batch, MOUTH)
    if not mouth:
        raise ValueError(
            f"these frames have none of {[m for m, _ in MOUTH]} (not ARKit names); pick "
            f"channels with --channels, e.g. --channels {','.join(batch.names[:3])}"
        )
    blinks = _series(batch, BLINKS)
    plt = _import_pyplot()
    rows = 1 + (audio is not None) + bool(blinks)
    ratios = ([1.0] if audio is not None else []) + [2.0] + ([1.0] if blinks else [])
    fig, axes = plt.subplots(
        rows, 1, sharex=True, figsize=(options.width_in, options.height_in),
        gridspec_kw={"height_ratios": ratios}, squeeze=False,
    )  # fmt: skip
    axes = [a[0] for a in axes]
    t = (batch.first_frame + np.arange(len(batch))) / batch.fps
    row = 0
    if audio is not None:
        samples, rate = audio
        ax = axes[row]
        ax.plot(np.arange(samples.shape[0]) / rate, samples, linewidth=0.4, color="0.35")
        ax.set_ylabel("audio")
        row += 1
    ax = axes[row]
    for label, values in mouth:
        ax.plot(t, values, label=label, linewidth=1.2)
    ax.set_ylabel("mouth")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="upper right", fontsize="small", ncol=len(mouth))
    row += 1
    if blinks:
        ax = axes[row]
        for label, values in blinks:
            ax.plot(t, values, label=label, linewidth=1.0)
        ax.set_ylabel("blinks")
        ax.set_ylim(-0.1, 1.1)
        ax.legend(loc="upper right", fontsize="small", ncol=2)
    axes[-1].set_xlabel(f"seconds ({batch.fps:g} fps, {len(batch)} frames)")
    if options.title:
        fig.suptitle(options.title)
    fig.tight_layout()
    fig.savefig(path, dpi=options.dpi)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``plot`` subcommand's options; sets ``func`` to :func:`run`."""
    parser.add_argument(
        "input", type=Path, help="audio file, or saved frames (.npz .json .csv .vmd)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="image: .png .svg .pdf")
    parser.add_argument(
        "--audio", type=Path, help="the audio of saved frames, to draw its waveform"
    )
    parser.add_argument("--profile", help="profile for an audio input (default: arkit)")
    parser.add_argument("--profile-dir", type=Path, help="directory of user profile TOML files")
    parser.add_argument("--config", type=Path, help="settings TOML file")
    parser.add_argument("--channels", help="comma-separated channels instead of the mouth set")
    parser.add_argument("--title", default="", help="figure title (default: the input's name)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audio2face.audio.wav import read_audio

    if args.output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(
            f"cannot draw into {args.output.name!r}: use one of {list(IMAGE_SUFFIXES)}"
        )
    _import_pyplot()  # the install hint before any work
    channels = [c.strip() for c in args.channels.split(",") if c.strip()] if args.channels else None
    audio: tuple[FloatArray, int] | None = None
    if args.input.suffix.lower() in supported_extensions():
        batch = load_frames(args.input)
        if args.audio is not None:
            audio = read_audio(args.audio)
    else:
        from audio2face.runtime import Runtime
        from audio2face.settings import Settings

        audio = read_audio(args.input)
        runtime = Runtime.start(Settings.load(args.config, profile_dir=args.profile_dir))
        try:
            batch = runtime.convert(audio[0], audio[1], args.profile or "arkit")
        finally:
            runtime.close()
    plot_frames(batch, args.output, audio=audio, channels=channels,
                options=PlotOptions(title=args.title or args.input.name))  # fmt: skip
    print(f"{args.output}: {len(batch)} frames drawn")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m audio2face.plot`` (until the main CLI wires ``plot``)."""
    import sys

    from audio2face.errors import Audio2FaceError

    parser = argparse.ArgumentParser(prog="audio2face plot", description=HELP)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except (Audio2FaceError, ValueError, ImportError, OSError) as exc:
        print(f"audio2face plot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
