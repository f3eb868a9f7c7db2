"""Hostile uploads and cross-site requests (issue 13): decode amplification, formats,
rates and channels, bounded upload concurrency, content types, CORS for GET only and
no redirect built from a forged Host."""

from __future__ import annotations

import io
import threading
import tracemalloc

import httpx
import numpy as np
import pytest
import soundfile as sf
from hardening_support import hardening_settings, start_server, steady_profile_dir

from audio2face.server.http_animate import _check, _decode
from audio2face.settings import Settings

ANIMATE = "/api/v1/animate"
WAV = {"content-type": "audio/wav"}


def audio_file(seconds: float, rate: int = 16000, channels: int = 1, fmt: str = "WAV",
               subtype: str | None = None) -> bytes:  # fmt: skip
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32)
    data = np.repeat(mono[:, None], channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def upload_server(tiny_unitalker_path, tmp_path_factory):
    profiles = steady_profile_dir(tmp_path_factory.mktemp("profiles_up"))
    settings = hardening_settings(
        tiny_unitalker_path, profiles, max_upload_samples=16000 * 2 * 60,
        cors_origins=("https://app.example",), max_uploads=1, max_upload_queue=0,
    )  # fmt: skip
    with start_server(settings) as server:
        yield server


def test_decoded_size_is_bounded_before_decoding(upload_server) -> None:
    """A small FLAC of long, wide audio is refused from its header, not decoded."""
    silent8 = io.BytesIO()
    sf.write(silent8, np.zeros((48000 * 120, 8), np.int16), 48000, format="FLAC")
    r = httpx.post(upload_server.http_url + ANIMATE, content=silent8.getvalue(), headers=WAV)
    assert r.status_code == 400 and "8 channels" in r.text and "upload_channels" in r.text
    long2 = audio_file(70.0, channels=2, fmt="FLAC")  # 2.24 M samples > 1.92 M
    r = httpx.post(upload_server.http_url + ANIMATE, content=long2, headers=WAV, timeout=30)
    assert r.status_code == 413 and "max_upload_samples=1920000" in r.text
    m = upload_server.app.state.a2f.metrics
    assert m.refusals.labels(limit="max_upload_samples")._value.get() >= 1


def test_rates_and_formats_outside_the_lists_are_refused(upload_server) -> None:
    url = upload_server.http_url + ANIMATE
    r = httpx.post(url, content=audio_file(0.5, rate=12345), headers=WAV)
    assert r.status_code == 400 and "12345" in r.text and "16000" in r.text
    r = httpx.post(url, content=audio_file(0.5, fmt="AIFF"), headers=WAV)
    assert r.status_code == 415 and "AIFF" in r.text and "upload_formats" in r.text
    for fmt in ("WAV", "FLAC", "OGG"):
        sub = "VORBIS" if fmt == "OGG" else None
        r = httpx.post(url, content=audio_file(0.5, fmt=fmt, subtype=sub), headers=WAV)
        assert r.status_code == 200, (fmt, r.text)


def test_decoding_mixes_down_in_blocks() -> None:
    """Peak memory of decoding a stereo file is about its mono result, not both channels
    in float32 (what reading it whole costs)."""
    data = audio_file(20.0, rate=48000, channels=2)
    settings = Settings(max_upload_samples=10**8)
    info = _check(data, settings)
    tracemalloc.start()
    try:
        mono, rate = _decode(data, info)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rate == 48000 and mono.shape == (48000 * 20,)
    assert peak < 1.5 * mono.nbytes, f"peak {peak / 1e6:.1f} MB for {mono.nbytes / 1e6:.1f} MB"
    whole, _ = sf.read(io.BytesIO(data), dtype="float32")
    np.testing.assert_allclose(mono, whole.mean(axis=1), atol=1e-6)


def test_uploads_have_their_own_bounded_turns(upload_server) -> None:
    """max_uploads=1, max_upload_queue=0: uploads arriving while one runs get 503."""
    url = upload_server.http_url + ANIMATE
    data = audio_file(40.0)
    codes: list[int] = []
    texts: list[str] = []

    def post() -> None:
        r = httpx.post(url, content=data, headers=WAV, timeout=60)
        codes.append(r.status_code)
        texts.append(r.text)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 200 in codes and 503 in codes, codes
    assert any("max_upload_queue=0" in t for t in texts)
    assert upload_server.app.state.a2f.uploads_waiting == 0


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json", 415),
        ("audio/wav", 200),
        ("audio/x-wav; codecs=1", 200),
        ("application/octet-stream", 200),
    ],
)
def test_body_needs_an_audio_content_type(upload_server, content_type, status) -> None:
    r = httpx.post(
        upload_server.http_url + ANIMATE, content=audio_file(0.3),
        headers={"content-type": content_type},
    )  # fmt: skip
    assert r.status_code == status, r.text
    if status == 415:
        assert "Content-Type: audio/wav" in r.text


def test_multipart_upload_still_works(upload_server) -> None:
    files = {"file": ("speech.wav", audio_file(0.3), "audio/wav")}
    assert httpx.post(upload_server.http_url + ANIMATE, files=files).status_code == 200


@pytest.mark.parametrize("origin", ["https://app.example", "https://evil.example"])
def test_cross_origin_posts_are_refused_even_from_cors_origins(upload_server, origin) -> None:
    url = upload_server.http_url + ANIMATE
    for kwargs in (
        {"content": audio_file(0.3), "headers": {"Origin": origin, "content-type": "text/plain"}},
        {"files": {"file": ("a.wav", audio_file(0.3), "audio/wav")}, "headers": {"Origin": origin}},
    ):
        r = httpx.post(url, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 403 and "GET only" in r.text
    # GET stays open to the configured origin, as documented
    r = httpx.get(upload_server.http_url + "/health", headers={"Origin": origin})
    allowed = r.headers.get("access-control-allow-origin")
    assert allowed == (origin if origin == "https://app.example" else None)
    # the service's own page may post
    own = f"http://127.0.0.1:{upload_server.port}"
    r = httpx.post(url, content=audio_file(0.3), headers={"Origin": own, **WAV})
    assert r.status_code == 200


def test_no_redirect_to_a_forged_host(upload_server) -> None:
    for path in ("/metrics/", "/health/", "/api/v1/animate/"):
        r = httpx.get(upload_server.http_url + path, headers={"Host": "evil.example"})
        assert r.status_code == 404, (path, r.status_code)
        assert "evil.example" not in r.headers.get("location", "")
