"""POST /api/v1/animate: whole files over HTTP."""

from __future__ import annotations

import io

import httpx
import numpy as np
import soundfile as sf
from v1_client import speechlike


def wav_bytes(seconds: float, rate: int = 24000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speechlike(seconds, rate=rate), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_animate_json_and_npz(unitalker_server) -> None:
    url = unitalker_server.http_url + "/api/v1/animate"
    r = httpx.post(url, content=wav_bytes(2.0), timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["names"]) == 52 and len(doc["values"]) == 60 and doc["fps"] == 30
    r = httpx.post(url, params={"format": "npz"}, content=wav_bytes(1.0))
    assert r.status_code == 200
    with np.load(io.BytesIO(r.content)) as data:
        assert data["values"].shape == (30, 52)


def test_animate_refuses_bad_input_clearly(unitalker_server) -> None:
    url = unitalker_server.http_url + "/api/v1/animate"
    r = httpx.post(url, content=b"definitely not audio")
    assert r.status_code == 400 and "not an audio file" in r.json()["detail"]
    assert "--data-binary" in r.json()["detail"]  # says how to send it
    r = httpx.post(url, params={"format": "xml"}, content=wav_bytes(0.5))
    assert r.status_code == 400 and "format" in r.json()["detail"]
    big = b"\0" * (unitalker_server.app.state.a2f.settings.max_upload_bytes + 1)
    r = httpx.post(url, content=big, timeout=60)
    assert r.status_code == 413 and "max_upload_bytes" in r.json()["detail"]


def test_animate_refuses_unknown_names_with_the_known_ones(unitalker_server) -> None:
    url = unitalker_server.http_url + "/api/v1/animate"
    r = httpx.post(url, params={"profile": "bogus"}, content=wav_bytes(0.5))
    assert r.status_code == 400
    assert r.json()["detail"].startswith("unknown profile 'bogus'; known: [")
    r = httpx.post(url, params={"profile": "arkit"}, content=wav_bytes(0.5))
    assert r.status_code == 400 and "'default' engine, which is not loaded" in r.json()["detail"]
    r = httpx.post(url, params={"emotion": "bogus"}, content=wav_bytes(0.5))
    assert r.status_code == 400 and "unknown emotion 'bogus'" in r.json()["detail"]


def test_animate_takes_a_multipart_upload(unitalker_server) -> None:
    url = unitalker_server.http_url + "/api/v1/animate"
    r = httpx.post(url, files={"file": ("speech.wav", wav_bytes(1.0), "audio/wav")}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(r.json()["values"]) == 30
    r = httpx.post(url, files={"a": ("a.wav", wav_bytes(0.2)), "b": ("b.wav", wav_bytes(0.2))})
    assert r.status_code == 400 and "expected one" in r.json()["detail"]
