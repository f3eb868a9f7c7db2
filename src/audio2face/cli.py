"""``audio2face`` command line: a thin layer over the library API.

Commands: ``serve``, ``convert``, ``stream``, ``phonemes``, ``models``, ``quantize``,
``bench``. Every ``serve`` flag
can also be set with an ``AUDIO2FACE_*`` environment variable (flags win).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from audio2face.settings import DEFAULT_PORT, Settings

logger = logging.getLogger("audio2face.cli")


def _settings_from(args: argparse.Namespace) -> Settings:
    return Settings.load(
        args.config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        default_profile=args.profile,
        profile_dir=args.profile_dir,
        unitalker_model=args.unitalker_model,
        providers=getattr(args, "providers", None),
        workers=getattr(args, "workers", None),
        log_level=getattr(args, "log_level", None),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from audio2face.logs import configure_logging
    from audio2face.server.serve import serve

    settings = _settings_from(args)
    configure_logging(settings)
    serve(settings, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from audio2face.audio.wav import read_audio
    from audio2face.formats import save_frames
    from audio2face.runtime import Runtime

    settings = _settings_from(args)
    logging.basicConfig(level=logging.WARNING)
    audio, rate = read_audio(args.input)
    runtime = Runtime.start(settings)
    try:
        batch = runtime.convert(
            audio, rate, args.profile, emotion=args.emotion or None, progress=not args.quiet
        )
    finally:
        runtime.close()
    save_frames(args.output, batch)
    print(f"{args.output}: {len(batch)} frames x {len(batch.names)} channels at {batch.fps:g} fps")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from audio2face.client import load_wire_pcm, stream_pcm
    from audio2face.formats import save_frames

    pcm = load_wire_pcm(args.input)
    result = asyncio.run(
        stream_pcm(
            pcm,
            url=args.url,
            profile=args.profile or "",
            emotion=args.emotion,
            chunk_ms=args.chunk_ms,
            pace=args.pace,
        )
    )
    save_frames(args.output, result.to_batch())
    print(f"{args.output}: {result.values.shape[0]} frames x {len(result.names)} channels")
    return 0


def cmd_phonemes(args: argparse.Namespace) -> int:
    from audio2face.formats import save_frames
    from audio2face.profiles import ProfileRegistry
    from audio2face.runtime import animate_phones

    settings = _settings_from(args)
    profile = ProfileRegistry(settings).resolve(args.profile).profile
    if args.text is not None:
        from audio2face.engines.phonemes.espeak import SynthOptions, synthesize

        speech = synthesize(args.text, SynthOptions(voice=args.voice))
        phones = list(speech.phones)
        duration = speech.duration
        if args.wav is not None:
            import soundfile as sf

            sf.write(args.wav, speech.audio, speech.sample_rate)
    else:
        doc = json.loads(Path(args.timings).read_text(encoding="utf-8"))
        phones = [(float(a), float(b), str(p)) for a, b, p in doc["phones"]]
        duration = float(doc.get("duration_s", phones[-1][1] if phones else 0.0))
    batch = animate_phones(profile, phones, duration, emotion=args.emotion or None)
    save_frames(args.output, batch)
    print(f"{args.output}: {len(batch)} frames x {len(batch.names)} channels from {len(phones)} phones")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from audio2face.profiles import ProfileRegistry

    settings = _settings_from(args)
    registry = ProfileRegistry(settings)
    info = {
        "default_profile": registry.default.name,
        "profiles": {
            name: {"engine": (p := registry.get(name)).engine, "fps": p.fps, "dtype": p.dtype,
                   "available": registry.is_available(p)}
            for name in registry.names()
        },
        "aliases": registry.aliases(),
        "unitalker_model": str(settings.unitalker_model) if settings.unitalker_model else None,
    }
    print(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from audio2face.engines.quantize import compare_unitalker, format_result, quantize_int8

    result = quantize_int8(args.model, args.output)
    deviation = None
    if args.check is not None:
        from audio2face.audio.resample import resample
        from audio2face.audio.wav import read_audio

        audio, rate = read_audio(args.check)
        deviation = compare_unitalker(args.model, args.output, resample(audio, rate, 16000))
    for line in format_result(result, deviation):
        print(line)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from audio2face.bench import main as bench_main

    return bench_main(args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audio2face", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", help="profile name (default: arkit)")
        p.add_argument("--profile-dir", type=Path, help="directory of user profile TOML files")
        p.add_argument("--unitalker-model", type=Path, help="path to unitalker_v0.4.0_base.onnx")
        p.add_argument("--config", type=Path, help="settings TOML file")

    serve = sub.add_parser("serve", help="run the streaming service")
    common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--providers", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--workers", type=int, help="server processes sharing the port (default 1)")
    serve.add_argument("--log-level")
    serve.add_argument("--ssl-certfile", help="serve wss:// with this certificate")
    serve.add_argument("--ssl-keyfile", help="private key for --ssl-certfile")
    serve.set_defaults(func=cmd_serve)

    convert = sub.add_parser("convert", help="animate an audio file in-process")
    common(convert)
    convert.add_argument("input", type=Path)
    convert.add_argument("-o", "--output", type=Path, required=True, help=".npz, .json or .csv")
    convert.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1")
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(func=cmd_convert)

    stream = sub.add_parser("stream", help="stream an audio file to a running server")
    stream.add_argument("input", type=Path)
    stream.add_argument("-o", "--output", type=Path, required=True, help=".npz, .json or .csv")
    stream.add_argument("--url", default="ws://127.0.0.1:18083/api/v1/streaming_audio2face/ws")
    stream.add_argument("--profile")
    stream.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1")
    stream.add_argument("--chunk-ms", type=float, default=40.0)
    stream.add_argument("--pace", action="store_true", help="send in real time")
    stream.set_defaults(func=cmd_stream)

    phon = sub.add_parser(
        "phonemes", help="animate known phone timings (TTS) or text (needs espeak-ng)"
    )
    common(phon)
    src = phon.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="text to speak with espeak-ng and animate")
    src.add_argument(
        "--timings", type=Path,
        help='JSON {"phones": [[start_s, end_s, "AA"], ...], "duration_s": 1.2}',
    )  # fmt: skip
    phon.add_argument("--voice", default="en-us", help="espeak-ng voice for --text")
    phon.add_argument("--wav", type=Path, help="also save the spoken --text here")
    phon.add_argument("--emotion", default="", help="offset_name, e.g. happiness_1")
    phon.add_argument("-o", "--output", type=Path, required=True, help=".npz, .json or .csv")
    phon.set_defaults(func=cmd_phonemes)

    models = sub.add_parser("models", help="list profiles and engines")
    common(models)
    models.set_defaults(func=cmd_models)

    quant = sub.add_parser(
        "quantize", help="write an int8-weight copy of a UniTalker model (faster on CPUs)"
    )
    quant.add_argument("model", type=Path, help="the fp32 UniTalker .onnx file")
    quant.add_argument("-o", "--output", type=Path, required=True, help="new .onnx file")
    quant.add_argument(
        "--check", type=Path, metavar="AUDIO",
        help="speech file to run both models on and report how far their frames differ",
    )  # fmt: skip
    quant.set_defaults(func=cmd_quantize)

    bench = sub.add_parser("bench", help="latency/throughput benchmark (see --help)")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from audio2face.errors import Audio2FaceError

        if isinstance(exc, Audio2FaceError | ValueError | FileNotFoundError):
            print(f"audio2face: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
