"""``audio2face live``: speak (or pipe audio) and drive an avatar app in real time.

Wired into the main CLI with::

    from audio2face.live import cli as live_cli
    live_cli.add_arguments(sub.add_parser("live", help=live_cli.HELP))

which sets ``func`` to :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from audio2face.errors import Audio2FaceError
from audio2face.formats import check_output, save_frames
from audio2face.live.backends import Backend, InProcessBackend, backend_for_url
from audio2face.live.runner import LiveOptions, LiveRun, Player
from audio2face.live.sources import AudioSource, FileSource, MicSource, StdinSource, list_devices
from audio2face.live.status import StatusLine, summary
from audio2face.sinks import (
    DEFAULT_LIVELINK_PORT,
    DEFAULT_VMC_PORT,
    LiveLinkOptions,
    LiveLinkSink,
    VmcNames,
    VmcOptions,
    VmcSink,
    parse_target,
)
from audio2face.sinks.base import FrameSink

__all__ = ["HELP", "add_arguments", "run"]

SinkFactory = Callable[[tuple[str, ...], float], Sequence[FrameSink]]

HELP = "animate a microphone, a file or a pipe in real time to VMC / Live Link apps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``live`` subcommand's options; sets ``func`` to :func:`run`."""
    src = parser.add_argument_group("input (one of)")
    src.add_argument("--mic", action="store_true", help="the microphone (needs audio2face[live])")
    src.add_argument("--file", type=Path, help="an audio file, played in real time")
    src.add_argument(
        "--stdin", action="store_true", help="raw 16-bit PCM (or a WAV stream) on stdin"
    )
    src.add_argument("--device", help="microphone name or index (see --list-devices)")
    src.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    src.add_argument("--rate", type=int, help="sample rate of --stdin raw PCM (or of the mic)")
    src.add_argument("--channels", type=int, default=1, help="channels of --stdin PCM (default 1)")

    out = parser.add_argument_group("targets")
    out.add_argument(
        "--vmc", nargs="?", const=f"127.0.0.1:{DEFAULT_VMC_PORT}", metavar="HOST:PORT",
        help=f"send VMC protocol (OSC/UDP) blend shapes (default port {DEFAULT_VMC_PORT})",
    )  # fmt: skip
    out.add_argument(
        "--vmc-names", metavar="SET",
        help="vrm0 (VRM 0 presets A I U E O Blink Joy ...), vrm1 (VRM 1.0 aa ih ...), arkit "
        "(perfect sync), or a .json name map; default vrm0, or arkit with --livelink or "
        "--profile arkit",
    )  # fmt: skip
    out.add_argument(
        "--livelink", nargs="?", const=f"127.0.0.1:{DEFAULT_LIVELINK_PORT}", metavar="HOST:PORT",
        help=f"send Live Link Face packets to Unreal (default port {DEFAULT_LIVELINK_PORT})",
    )  # fmt: skip
    out.add_argument("--livelink-subject", default="audio2face", help="Live Link subject name")
    out.add_argument("--livelink-device-id", default="", help="device id (default: random UUID)")
    out.add_argument(
        "-o", "--output", type=Path, help="also save the frames (.npz .json .csv .vmd)"
    )

    model = parser.add_argument_group("model")
    model.add_argument("--profile", help="profile (default: from --vmc-names, else arkit)")
    model.add_argument("--profile-dir", type=Path, help="directory of user profile TOML files")
    model.add_argument("--unitalker-model", type=Path, help="path to unitalker_v0.4.0_base.onnx")
    model.add_argument("--config", type=Path, help="settings TOML file")
    model.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1")
    model.add_argument("--url", help="use a server instead of this process (ws://.../api/v1/...)")
    model.add_argument("--token", help="the server's token (sent as a header)")

    timing = parser.add_argument_group("timing and sound")
    timing.add_argument("--fps", type=float, help="output frame rate (default: the profile's, 30)")
    timing.add_argument(
        "--delay-ms", type=float,
        help="send frame k at its audio's capture time + this (default: look-ahead + one "
        "block + 30 ms, the earliest steady value)",
    )  # fmt: skip
    timing.add_argument("--block-ms", type=float, default=20.0, help="audio block (default 20)")
    timing.add_argument("--play", action="store_true", help="play the input, in sync with the face")
    timing.add_argument(
        "--play-offset-ms", type=float, default=0.0,
        help="delay the sound further (the avatar app's render time; default 0)",
    )  # fmt: skip
    timing.add_argument("--duration", type=float, help="stop after this many seconds of audio")
    timing.add_argument("-q", "--quiet", action="store_true", help="no status line")
    parser.set_defaults(func=run)


def _profile_and_names(args: argparse.Namespace) -> tuple[str | None, VmcNames | None]:
    """The profile to run and the VMC name set: name sets pick their profile (data)."""
    names = None
    if args.vmc is not None:
        which = args.vmc_names or ("arkit" if args.livelink or args.profile == "arkit" else "vrm0")
        names = VmcNames.load(which)
    elif args.vmc_names:
        raise ValueError("--vmc-names needs --vmc")
    profile = args.profile or (names.profile if names is not None else None)
    if (
        args.livelink is not None
        and names is not None
        and names.profile != "arkit"
        and not args.profile
    ):
        raise ValueError(
            f"--livelink needs ARKit names but --vmc-names {names.name} runs the "
            f"{names.profile!r} profile; use --vmc-names arkit, or run two `live` processes"
        )
    return profile, names


def _source(args: argparse.Namespace, block_s: float) -> AudioSource:
    chosen = [
        flag
        for flag, on in (("--mic", args.mic), ("--file", args.file), ("--stdin", args.stdin))
        if on
    ]
    if len(chosen) != 1:
        raise ValueError(
            f"give exactly one input: --mic, --file PATH or --stdin (got {chosen or 'none'})"
        )
    if args.file is not None:
        return FileSource(args.file, block_s)
    if args.stdin:
        return StdinSource(args.rate, block_s, channels=args.channels)
    device: str | int | None = (
        int(args.device) if args.device and args.device.isdigit() else args.device
    )
    return MicSource(block_s, device=device, rate=args.rate)


def _backend(args: argparse.Namespace, profile: str | None) -> Backend:
    if args.url:
        return backend_for_url(args.url, token=args.token, profile=profile, emotion=args.emotion)
    from audio2face.runtime import Runtime
    from audio2face.settings import Settings

    settings = Settings.load(
        args.config, profile_dir=args.profile_dir, unitalker_model=args.unitalker_model
    )
    return InProcessBackend(Runtime.start(settings), profile, args.emotion)


def _sink_factory(args: argparse.Namespace, vmc_names: VmcNames | None) -> SinkFactory:
    vmc_options = (
        VmcOptions(parse_target(args.vmc, DEFAULT_VMC_PORT, flag="--vmc")) if args.vmc else None
    )
    ll_options = (
        LiveLinkOptions(
            parse_target(args.livelink, DEFAULT_LIVELINK_PORT, flag="--livelink"),
            subject=args.livelink_subject,
            device_id=args.livelink_device_id,
        )
        if args.livelink
        else None
    )

    def make(names: tuple[str, ...], fps: float) -> Sequence[FrameSink]:
        sinks: list[FrameSink] = []
        if vmc_options is not None and vmc_names is not None:
            sinks.append(VmcSink(names, vmc_names, vmc_options))
        if ll_options is not None:
            sinks.append(LiveLinkSink(names, fps, ll_options))
        return sinks

    return make


async def _live(args: argparse.Namespace) -> int:
    options = LiveOptions(
        block_s=args.block_ms / 1000,
        delay_s=None if args.delay_ms is None else args.delay_ms / 1000,
        fps=args.fps,
        duration_s=args.duration,
    )
    profile, vmc_names = _profile_and_names(args)
    if args.vmc is None and args.livelink is None and args.output is None:
        raise ValueError("nothing to send to: give --vmc, --livelink and/or -o FILE")
    make_sinks = _sink_factory(args, vmc_names)
    source = _source(args, options.block_s)
    backend = _backend(args, profile)
    if isinstance(backend, InProcessBackend):
        # Everything a target or file needs from the names, checked before any audio.
        for sink in make_sinks(backend.names, options.fps or backend.profile.fps):
            sink.close()
        if args.output is not None:
            check_output(args.output, backend.names, args.fps)
    if isinstance(source, StdinSource):
        await source.open()
    player = None
    if args.play:
        from audio2face.live.playback import DelayedPlayer

        def player(rate: int, delay_s: float) -> Player:
            return DelayedPlayer(rate, delay_s, offset_s=args.play_offset_ms / 1000)

    live = LiveRun(source, backend, make_sinks, options, player=player,
                   record=args.output is not None)  # fmt: skip
    loop = asyncio.get_running_loop()
    stops = 0

    def on_signal() -> None:
        nonlocal stops
        stops += 1
        if stops > 1:  # a second Ctrl-C: stop waiting for the frames in flight
            runner.cancel()
        live.stop()

    print(f"live: {source.description} -> {backend.description}", file=sys.stderr)
    status = StatusLine(live, sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    status_task = asyncio.create_task(status.loop()) if status is not None else None
    runner = asyncio.create_task(live.run())
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGINT, on_signal)
    try:
        await runner
    except asyncio.CancelledError:
        if stops < 2:
            raise
    finally:
        backend.close()
        if status_task is not None:
            status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status_task
            if status is not None:
                status.clear()
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
    print(summary(live), file=sys.stderr)
    recording = live.recording()
    if args.output is not None and recording is not None:
        check_output(args.output, recording.names, recording.fps)
        save_frames(args.output, recording)
        print(f"{args.output}: {len(recording)} frames", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``live``; returns the exit code. Errors the user can fix raise ``ValueError``
    / ``ImportError`` with a one-line message (the main CLI prints them)."""
    if args.list_devices:
        print(list_devices())
        return 0
    try:
        return asyncio.run(_live(args))
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be installed
        print("live: stopped", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m audio2face.live``: the subcommand on its own (until the main CLI
    wires it)."""
    parser = argparse.ArgumentParser(prog="audio2face live", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (Audio2FaceError, ValueError, ImportError, OSError) as exc:
        print(f"audio2face live: error: {exc}", file=sys.stderr)
        return 2
