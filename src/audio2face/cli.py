"""``audio2face`` command line: a thin layer over the library API.

Commands: ``serve``, ``convert``, ``stream``, ``phonemes``, ``models``, ``quantize``,
``live`` (:mod:`audio2face.live.cli`), ``bench``. Every ``serve`` flag can also be set with an ``AUDIO2FACE_*`` environment
variable (flags win).

Errors are one line on stderr, ``audio2face: error: <what is wrong>; <what to do>``.
The exit status is 2 for bad input or settings (the same command would fail again)
and 1 for the rest (no server, a stream the server ended, a bug). ``--debug`` (before
or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from audio2face.settings import DEFAULT_PORT, Settings

if TYPE_CHECKING:
    pass

logger = logging.getLogger("audio2face.cli")

TOKEN_ENV = "AUDIO2FACE_AUTH_TOKEN"
"""The server's token setting; ``stream`` sends it when ``--token`` is not given."""
"""Silence that ``models`` runs through each profile to prove it works."""


# --- commands ---------------------------------------------------------------------------


def _settings_from(args: argparse.Namespace, *, profile_is_default: bool = False) -> Settings:
    """Settings from the environment, ``--config`` and the flags. ``--profile`` is the
    default profile for ``serve`` and ``models``; the other commands ask the runtime for
    it by name, so an unknown one is refused with the known ones."""
    return Settings.load(
        args.config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        default_profile=args.profile if profile_is_default else None,
        profile_dir=args.profile_dir,
        unitalker_model=args.unitalker_model,
        providers=getattr(args, "providers", None),
        workers=getattr(args, "workers", None),
        log_level=getattr(args, "log_level", None),
    )


def _progress_on(args: argparse.Namespace) -> bool:
    """Progress bars go to stderr, and only to a terminal (not to logs or pipes)."""
    return not args.quiet and sys.stderr.isatty()


def cmd_serve(args: argparse.Namespace) -> int:
    from audio2face.logs import configure_logging
    from audio2face.server.serve import serve

    settings = _settings_from(args, profile_is_default=True)
    configure_logging(settings)
    serve(settings, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from audio2face.audio.wav import read_audio
    from audio2face.formats import SaveOptions, VmdOptions, check_output, save_frames
    from audio2face.runtime import Runtime

    settings = _settings_from(args)
    logging.basicConfig(level=logging.WARNING)
    runtime = Runtime.start(settings)
    try:
        # Everything that can be refused is refused before the audio is even read.
        profile = runtime.profile(args.profile)
        check_output(args.output, runtime.output_names(profile), args.fps)
        if args.emotion:
            runtime.check_emotion(profile, args.emotion)
        audio, rate = read_audio(args.input)
        batch = runtime.convert(
            audio, rate, profile, emotion=args.emotion or None, fps=args.fps,
            progress=_progress_on(args),
        )  # fmt: skip
    finally:
        runtime.close()
    save_frames(args.output, batch, SaveOptions(vmd=VmdOptions(model_name=args.vmd_model_name)))
    print(f"{args.output}: {len(batch)} frames x {len(batch.names)} channels at {batch.fps:g} fps")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from audio2face.client import (
        DEFAULT_URL,
        FPS,
        WIRE_RATE,
        ConnectError,
        Hooks,
        UtteranceOptions,
        V1Client,
        load_wire_pcm,
    )
    from audio2face.formats import check_output, save_frames
    from audio2face.frames import resample_frames

    # The server names the channels; a built-in profile's names are known here already,
    # so a format that cannot hold them is refused before any audio is sent.
    check_output(args.output, _local_output_names(args.profile), args.fps)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    url = args.url or DEFAULT_URL
    client = V1Client(url=url, token=token, open_timeout_s=args.connect_timeout)
    options = UtteranceOptions(
        profile=args.profile, emotion=args.emotion, chunk_ms=args.chunk_ms, pace=args.pace
    )
    pcm = load_wire_pcm(args.input)
    seconds = round(len(pcm) / 2 / WIRE_RATE, 2)
    with tqdm(total=seconds, unit="s", desc="streaming", disable=not _progress_on(args)) as bar:

        def on_frames(_: float, frames: int) -> None:
            bar.update(min(seconds, round(frames / FPS, 2)) - bar.n)

        try:
            if args.protocol == "v2":
                from audio2face.client_v2 import DEFAULT_V2_URL, stream_pcm_v2

                batch = asyncio.run(
                    stream_pcm_v2(
                        pcm, url=args.url or DEFAULT_V2_URL, token=token,
                        profile=args.profile or None, emotion=args.emotion or None,
                        chunk_ms=args.chunk_ms, pace=args.pace,
                        open_timeout_s=args.connect_timeout, on_frames=on_frames,
                    )  # fmt: skip
                ).to_batch()
            else:
                batch = asyncio.run(
                    client.stream(pcm, options, Hooks(on_frames=on_frames))
                ).to_batch()
        except ConnectError as exc:
            if exc.status in (401, 403) and token is None:
                raise ConnectError(
                    f"{exc.reason}; if the server needs a token, pass --token or set {TOKEN_ENV}",
                    status=exc.status,
                ) from exc
            raise
    if args.fps is not None and abs(args.fps - batch.fps) > 1e-9:
        batch = resample_frames(batch, args.fps, seconds=len(pcm) / 2 / WIRE_RATE)
    save_frames(args.output, batch)
    print(f"{args.output}: {len(batch)} frames x {len(batch.names)} channels at {batch.fps:g} fps")
    return 0


def _local_output_names(profile: str | None) -> tuple[str, ...] | None:
    """The channel names of a built-in profile (or the default), else ``None``."""
    from audio2face.errors import Audio2FaceError
    from audio2face.profiles import ProfileRegistry
    from audio2face.profiles.model import EngineName

    registry = ProfileRegistry(engines=get_args(EngineName))
    try:
        return registry.require(profile).declared_output_names
    except Audio2FaceError:
        return None  # a profile only the server knows: it will say


def cmd_phonemes(args: argparse.Namespace) -> int:
    from audio2face.formats import save_frames
    from audio2face.runtime import Runtime

    settings = _settings_from(args)
    if args.text is not None:
        from audio2face.runtime import speak

        speech = speak(args.text, args.voice, hint="or give --timings instead")
        phones = list(speech.phones)
        duration = speech.duration
        if args.wav is not None:
            import soundfile as sf

            sf.write(args.wav, speech.audio, speech.sample_rate)
    else:
        from audio2face.formats.timings import read_timings

        phones, duration = read_timings(args.timings, where=f"--timings {str(args.timings)!r}")
    runtime = Runtime.start(settings)
    try:
        batch = runtime.animate_phones(args.profile, phones, duration, emotion=args.emotion or None)
    finally:
        runtime.close()
    save_frames(args.output, batch)
    print(
        f"{args.output}: {len(batch)} frames x {len(batch.names)} channels from {len(phones)} phones"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from audio2face.loading import try_load_engines
    from audio2face.profiles import ProfileRegistry
    from audio2face.profiles.model import EngineName
    from audio2face.runtime import probe_profile

    settings = _settings_from(args, profile_is_default=True)
    engines, errors = try_load_engines(settings)
    # Every engine name, so the registry lists all profiles; availability is tested here.
    registry = ProfileRegistry(
        engines=get_args(EngineName),
        profile_dir=settings.profile_dir,
        default_profile=settings.default_profile,
    )
    profiles: dict[str, dict[str, Any]] = {}
    for name in registry.names():
        profile = registry.get(name)
        reason = probe_profile(profile, engines, errors)
        entry: dict[str, Any] = {"engine": profile.engine, "fps": profile.fps,
                                 "dtype": profile.dtype, "available": reason is None}  # fmt: skip
        if reason is not None:
            entry["reason"] = reason
        profiles[name] = entry
    info = {
        "default_profile": registry.default.name,
        "profiles": profiles,
        "aliases": registry.aliases(),
        "engines": {
            name: (
                {
                    "loaded": True,
                    "fps": e.fps,
                    "any_fps": e.capabilities.any_fps,
                    "sample_rate": e.sample_rate,
                    "lookahead_s": e.lookahead_s,
                }  # fmt: skip
                if (e := engines.get(name)) is not None
                else {"loaded": False, "error": errors[name]}
            )
            for name in sorted({*engines, *errors})
        },
        "unitalker_model": str(settings.unitalker_model) if settings.unitalker_model else None,
    }
    print(json.dumps(info, indent=2, ensure_ascii=False))
    if not profiles[registry.default.name]["available"]:
        print(
            f"audio2face: warning: the default profile {registry.default.name!r} cannot run: "
            f"{profiles[registry.default.name]['reason']}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from audio2face.engines.quantize import format_result, quantize_unitalker

    result, deviation = quantize_unitalker(args.model, args.output, check=args.check)
    for line in format_result(result, deviation):
        print(line)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from audio2face.bench import run

    return run(args)


# --- the parser -------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage errors are one line too, pointing at ``--help`` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` where there is a default worth showing and the help text
    does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, "") or action.default is argparse.SUPPRESS:
            return text
        if "default" in text.lower():
            return text
        return super()._get_help_string(action) or ""


def _setting_default(name: str) -> object:
    return Settings.model_fields[name].default


def build_parser() -> argparse.ArgumentParser:
    from audio2face.client import DEFAULT_CHUNK_MS, DEFAULT_OPEN_TIMEOUT_S, DEFAULT_URL

    parser = Parser(
        prog="audio2face",
        description="Streaming speech to facial animation (ARKit blendshapes, MMD, VRM).",
        epilog="Errors are one line on stderr (exit status 2: bad input or settings, 1: the "
        "rest); --debug adds the traceback. `audio2face COMMAND --help` for each command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    # Also accepted after the command (`audio2face stream ... --debug`).
    debug = Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, parents=[debug], formatter_class=HelpFormatter
        )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile",
            help=f"profile name (default: {_setting_default('default_profile')}, "
            "or $AUDIO2FACE_DEFAULT_PROFILE)",
        )
        p.add_argument("--profile-dir", type=Path, help="directory of user profile TOML files")
        p.add_argument(
            "--unitalker-model", type=Path, help="path to unitalker_v0.4.0_base.onnx (enables it)"
        )
        p.add_argument(
            "--config", type=Path, help="settings TOML file (default: $AUDIO2FACE_CONFIG)"
        )
        p.add_argument(
            "--providers",
            choices=["auto", "cpu", "cuda"],
            help=f"onnxruntime providers (default: {_setting_default('providers')}: CUDA when "
            "usable, else CPU)",
        )

    serve = command("serve", "run the streaming service")
    common(serve)
    serve.add_argument(
        "--host", help=f"bind address (default: {_setting_default('host')}; 0.0.0.0 to expose)"
    )
    serve.add_argument("--port", type=int, help=f"TCP port (default: {DEFAULT_PORT})")
    serve.add_argument("--workers", type=int, help="server processes sharing the port (default: 1)")
    serve.add_argument("--log-level", help=f"log level (default: {_setting_default('log_level')})")
    serve.add_argument("--ssl-certfile", help="serve wss:// and https:// with this certificate")
    serve.add_argument("--ssl-keyfile", help="private key for --ssl-certfile")
    serve.set_defaults(func=cmd_serve)

    convert = command("convert", "animate an audio file in-process (no server)")
    common(convert)
    convert.add_argument("input", type=Path, help="audio file (WAV, FLAC, OGG, MP3, ...; any rate)")
    convert.add_argument(
        "-o", "--output", type=Path, required=True, help="frames file: .npz, .json or .csv"
    )
    convert.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1 (mmd)")
    convert.add_argument(
        "--fps", type=float,
        help="output frame rate (default: the profile's); round(seconds*fps) frames",
    )  # fmt: skip
    convert.add_argument(
        "--vmd-model-name", default="audio2face",
        help="the model name written into a .vmd (MMD applies the motion to any model)",
    )  # fmt: skip
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(func=cmd_convert)

    stream = command("stream", "stream an audio file to a running server (protocol v1)")
    stream.add_argument("input", type=Path, help="audio file (WAV, FLAC, OGG, MP3, ...; any rate)")
    stream.add_argument(
        "-o", "--output", type=Path, required=True, help="frames file: .npz, .json or .csv"
    )
    stream.add_argument(
        "--url", default=None,
        help=f"the server's WebSocket URL (default: {DEFAULT_URL} for v1, its /api/v2/stream "
        "for v2)",
    )  # fmt: skip
    stream.add_argument(
        "--protocol", choices=("v1", "v2"), default="v1",
        help="v1 (protobuf, the original's) or v2 (JSON + binary frames, /api/v2/stream)",
    )  # fmt: skip
    stream.add_argument(
        "--profile", default="", help="profile or avatar name (default: the server's default)"
    )
    stream.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1 (mmd)")
    stream.add_argument(
        "--token",
        help=f"auth token, sent as 'Authorization: Bearer' (default: ${TOKEN_ENV} if set)",
    )
    stream.add_argument(
        "--chunk-ms", type=float, default=DEFAULT_CHUNK_MS, help="audio per message, in ms"
    )
    stream.add_argument("--pace", action="store_true", help="send in real time, as a microphone")
    stream.add_argument(
        "--fps", type=float,
        help="output frame rate (default: the server's, 30); frames are resampled here",
    )  # fmt: skip
    stream.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_OPEN_TIMEOUT_S,
        help="seconds to wait for the WebSocket handshake",
    )
    stream.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    stream.set_defaults(func=cmd_stream)

    phon = command("phonemes", "animate known phone timings (TTS) or text (needs espeak-ng)")
    common(phon)
    src = phon.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text to speak with espeak-ng and animate")
    from audio2face.formats.timings import TIMINGS_FORMAT

    src.add_argument("--timings", type=Path, help=f"JSON file {TIMINGS_FORMAT}")
    phon.add_argument("--voice", default="en-us", help="espeak-ng voice for --text")
    phon.add_argument("--wav", type=Path, help="also save the spoken --text here (a speech file)")
    phon.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1 (mmd)")
    phon.add_argument(
        "-o", "--output", type=Path, required=True, help="frames file: .npz, .json or .csv"
    )
    phon.set_defaults(func=cmd_phonemes)

    models = command("models", "load the engines and say which profiles can run, and why not")
    common(models)
    models.set_defaults(func=cmd_models)

    quant = command("quantize", "write an int8-weight copy of a UniTalker model (faster on CPUs)")
    quant.add_argument("model", type=Path, help="the fp32 UniTalker .onnx file")
    quant.add_argument("-o", "--output", type=Path, required=True, help="new .onnx file")
    quant.add_argument(
        "--check",
        type=Path,
        metavar="AUDIO",
        help="speech file to run both models on; reports how far their frames differ, "
        "and writes nothing if the copy is unusable",
    )
    quant.set_defaults(func=cmd_quantize)

    from audio2face.live import cli as live_cli

    live_cli.add_arguments(command("live", live_cli.HELP))  # sets func

    from audio2face import plot as plot_cli

    plot_cli.add_arguments(command("plot", plot_cli.HELP))  # sets func

    from audio2face import bench as bench_cli

    bench = sub.add_parser(
        "bench", help="latency/throughput benchmark of a real server",
        description=bench_cli.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    bench_cli.add_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


# --- errors -----------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """An exception as one line: its reason, whitespace (tracebacks, pydantic's
    multi-line reports) folded."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        ]
        text = "invalid settings: " + "; ".join(parts)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def describe(exc: BaseException) -> tuple[str, int]:
    """The message and exit status for an error that ended a command."""
    from websockets.exceptions import InvalidHandshake, InvalidURI

    from audio2face.client import ClientError, StreamError
    from audio2face.errors import Audio2FaceError, AuthError, EngineError

    if isinstance(exc, StreamError):
        text = one_line(exc)
        if exc.code == 1008 and "token" in exc.reason:
            text += f"; pass --token or set {TOKEN_ENV}"
        return text, 1
    if isinstance(exc, ClientError | EngineError | AuthError):
        return one_line(exc), 1
    # ConfigError, UnknownNameError, AudioFormatError, ...; pydantic's ValidationError
    # is a ValueError.
    if isinstance(exc, Audio2FaceError | ValueError):
        return one_line(exc), 2
    # The v1 client wraps these; kept for any path that reaches websockets directly.
    if isinstance(exc, InvalidURI):
        return f"{exc.uri!r} is not a WebSocket URL; use ws://HOST:PORT/PATH", 2
    if isinstance(exc, InvalidHandshake):
        return f"the WebSocket handshake failed: {one_line(exc)}", 1
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the server running (`audio2face serve`)?", 1
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror or one_line(exc)}", 2 if exc.filename else 1
    if isinstance(exc, ImportError):
        text = one_line(exc)
        if "pip install" not in text:
            text += "; is audio2face installed with the extra this needs (pip install ...)?"
        return text, 1
    return (
        f"unexpected {type(exc).__name__}: {one_line(exc)} (a bug; rerun with --debug and "
        "report the traceback)",
        1,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        message, status = describe(exc)
        print(f"audio2face: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
