"""Fuzz the protocol v1 decode path: ``decode_request`` then the ChunkStart and
ChunkBody validation the server applies to every message.

Anything but :class:`~audio2face.errors.Audio2FaceError` escaping is a bug: the
server turns those into a close frame, anything else into a 1011 and a traceback.

    python fuzz/fuzz_protocol.py -max_total_time=300 fuzz/corpus/protocol
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from audio2face.audio.pcm import PcmFormat, decode_pcm
    from audio2face.errors import Audio2FaceError
    from audio2face.protocol.v1 import RequestKind, decode_request, parse_start
    from audio2face.server.ws_v1 import close_reason

ACCEPTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


def test_one_input(data: bytes) -> None:
    try:
        kind, msg = decode_request(data)
    except Audio2FaceError as exc:
        _check_reason(exc)
        return
    try:
        if kind is RequestKind.START:
            options = parse_start(msg, ACCEPTED_RATES, 10)
            if options.chunk_frames < 1:
                raise RuntimeError(f"chunk_frames {options.chunk_frames} < 1 accepted")
        elif kind is RequestKind.BODY:
            audio = decode_pcm(msg.pcm_bytes, PcmFormat(16000))
            if audio.shape[0] * 2 != len(msg.pcm_bytes):
                raise RuntimeError("decoded sample count does not match the byte count")
    except Audio2FaceError as exc:
        _check_reason(exc)


def _check_reason(exc: Audio2FaceError) -> None:
    # The reason goes into a close frame: it must encode and fit 123 bytes.
    if len(close_reason(exc.reason).encode("utf-8")) > 123:
        raise RuntimeError("close reason too long")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
