"""PCM decoding, protocol v1 encoding, output formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audio2face.audio.pcm import PcmFormat, decode_pcm
from audio2face.errors import AudioFormatError, ProtocolError
from audio2face.formats import load_frames, save_frames
from audio2face.protocol.v1 import (
    Request,
    RequestKind,
    Response,
    decode_request,
    encode_body,
    encode_start,
)
from audio2face.rigs import ARKIT_52
from audio2face.types import FrameBatch

RATES = (8000, 16000, 48000)


def test_decode_pcm_scales_and_downmixes() -> None:
    pcm = np.array([0, 16384, -32768, 32767], "<i2").tobytes()
    mono = decode_pcm(pcm, PcmFormat(16000))
    np.testing.assert_allclose(mono, [0.0, 0.5, -1.0, 32767 / 32768])
    stereo = decode_pcm(pcm, PcmFormat(16000, 2, 2))
    np.testing.assert_allclose(stereo, [0.25, (-1.0 + 32767 / 32768) / 2])


@pytest.mark.parametrize("n", [1, 3, 1001])
def test_odd_byte_count_is_refused_with_the_count(n: int) -> None:
    with pytest.raises(AudioFormatError, match=f"{n} bytes"):
        decode_pcm(b"\0" * n, PcmFormat(16000))


@pytest.mark.parametrize(
    ("fmt", "word"),
    [
        (PcmFormat(0), "sample_rate 0"),
        (PcmFormat(-16000), "sample_rate -16000"),
        (PcmFormat(16000, 3), "sample_width 3"),
        (PcmFormat(16000, 2, 0), "n_channels 0"),
        (PcmFormat(16000, 2, 1000), "n_channels 1000"),
    ],
)
def test_bad_formats_name_the_allowed_values(fmt: PcmFormat, word: str) -> None:
    with pytest.raises(AudioFormatError, match=word):
        fmt.validate(RATES)


@given(st.binary(max_size=200))
def test_decode_request_never_raises_anything_but_protocol_error(data: bytes) -> None:
    try:
        kind, _ = decode_request(data)
    except ProtocolError as exc:
        assert exc.code == 1008
    else:
        assert kind in RequestKind


def test_round_trip_of_request_kinds() -> None:
    for kind in RequestKind:
        got, msg = decode_request(Request(class_name=kind.value).SerializeToString())
        assert got is kind
    with pytest.raises(ProtocolError, match="unknown class_name"):
        decode_request(Request(class_name="Nope").SerializeToString())


def test_body_encoding_is_row_major_little_endian() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3) / 8
    for dtype, np_dtype in (("float16", "<f2"), ("float32", "<f4")):
        resp = Response()
        resp.ParseFromString(encode_body(values, dtype))
        assert resp.dtype == dtype
        np.testing.assert_array_equal(np.frombuffer(resp.data, np_dtype).reshape(2, 3), values)
    start = Response()
    start.ParseFromString(encode_start((" なごみ左", "あ"), "float16"))
    assert list(start.blendshape_names) == [" なごみ左", "あ"]
    with pytest.raises(ValueError, match="float16"):
        encode_start(("a",), "fp16")


@pytest.mark.parametrize("ext", [".npz", ".json", ".csv"])
def test_formats_round_trip(tmp_path, ext: str) -> None:
    rng = np.random.default_rng(0)
    batch = FrameBatch(0, ARKIT_52, rng.uniform(0, 1, (7, 52)).astype(np.float32), 30.0)
    path = tmp_path / f"out{ext}"
    save_frames(path, batch)
    back = load_frames(path)
    assert len(back) == 7
    by_name = {n.lower(): i for i, n in enumerate(back.names)}
    for j, name in enumerate(ARKIT_52):
        np.testing.assert_allclose(back.values[:, by_name[name.lower()]], batch.values[:, j], atol=1e-5)


def test_npz_has_exactly_the_documented_keys(tmp_path) -> None:
    batch = FrameBatch(0, ("a", "b"), np.zeros((3, 2), np.float32), 30.0)
    save_frames(tmp_path / "x.npz", batch)
    with np.load(tmp_path / "x.npz") as data:
        assert sorted(data.files) == ["fps", "names", "values"]
        assert data["values"].dtype == np.float32
        assert float(data["fps"]) == 30.0
    save_frames(tmp_path / "x.json", batch)
    assert json.loads((tmp_path / "x.json").read_text())["names"] == ["a", "b"]


def test_csv_refuses_non_arkit_profiles(tmp_path) -> None:
    batch = FrameBatch(0, ("あ", "い"), np.zeros((3, 2), np.float32), 30.0)
    with pytest.raises(ValueError, match="ARKit"):
        save_frames(tmp_path / "x.csv", batch)
