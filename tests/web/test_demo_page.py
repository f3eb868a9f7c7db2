"""The demo page in a real browser: Debian's chromium driven by Playwright for Python
(the system browser through ``executable_path``: Playwright's own download is not
available offline), with chromium's fake microphone playing a speech WAV.

Skips with one line where chromium or the playwright package is missing (``.ci/run``
installs both). Each test is short: CI has 2 cores.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from audio2face.audio.resample import resample
from audio2face.server import create_app
from audio2face.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AUDIO2FACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / "docs" / "demo.png"
CAPTURE_RATE = 48000
TEXT = "Hello! I am a face that talks. Put a microphone in front of me, and watch my lips move."

if not Path(CHROMIUM).exists():
    pytest.skip(
        "chromium is not installed (apt-get install chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)


def speech_wav(path: Path) -> Path:
    """Real speech from espeak-ng when the library is there, else a speech-like signal;
    16-bit mono at 48 kHz (what chromium's fake capture device plays, looped)."""
    try:
        from audio2face.runtime import speak

        said = speak(TEXT)
        audio = resample(said.audio, said.sample_rate, CAPTURE_RATE)
    except Exception:  # no libespeak-ng: bursts of harmonics still open the jaw
        t = np.arange(int(4.0 * CAPTURE_RATE)) / CAPTURE_RATE
        voice = sum(np.sin(2 * np.pi * k * 130 * t) / k for k in range(1, 8))
        audio = 0.4 * voice * (np.sin(2 * np.pi * 2.5 * t) > 0)
    pad = np.zeros(int(0.3 * CAPTURE_RATE))
    pcm = (np.clip(np.concatenate([pad, audio, pad]), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(CAPTURE_RATE)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def server():
    from conftest import LiveServer

    with LiveServer(create_app(Settings())) as live:
        yield live


@pytest.fixture(scope="module")
def page(server, tmp_path_factory: pytest.TempPathFactory):
    wav = speech_wav(tmp_path_factory.mktemp("audio") / "speech.wav")
    args = [
        "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        context = browser.new_context(viewport={"width": 1000, "height": 600})
        context.grant_permissions(["microphone"], origin=server.http_url)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(server.http_url + "/")
        tab.wait_for_function("document.getElementById('status').textContent.startsWith('ready')")
        tab.errors = errors  # type: ignore[attr-defined]  # collected for the tests
        yield tab
        browser.close()


def face_pixels(page) -> np.ndarray:
    """The face canvas's RGBA pixels (sent as base64: a JSON array of 700k numbers is slow)."""
    data = page.evaluate(
        """() => {
            const px = document.getElementById('face').getContext('2d')
                .getImageData(0, 0, 420, 420).data;
            let s = '';
            for (let i = 0; i < px.length; i += 0x8000) {
                s += String.fromCharCode.apply(null, px.subarray(i, i + 0x8000));
            }
            return btoa(s);
        }"""
    )
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(420, 420, 4)


def test_microphone_streams_and_the_face_moves(page) -> None:
    page.click("#mic")
    page.wait_for_function("window.a2fDemo.framesReceived >= 90", timeout=20_000)
    ready = page.evaluate("window.a2fDemo.ready")
    assert ready["profile"] == "arkit" and len(ready["names"]) == 52
    jaw = np.array(page.evaluate("window.a2fDemo.series('jawOpen')"), dtype=float)
    blink = np.array(page.evaluate("window.a2fDemo.series('eyeBlinkLeft')"), dtype=float)
    open_i = int(np.argmax(np.where(blink < 0.2, jaw, -1)))  # eyes open: for the screenshot
    closed_i = int(np.argmin(jaw))
    assert jaw[open_i] > 0.2 and jaw[closed_i] < 0.05, jaw
    assert page.evaluate(f"window.a2fDemo.renderFrame({closed_i})")
    closed = face_pixels(page)
    assert page.evaluate(f"window.a2fDemo.renderFrame({open_i})")
    opened = face_pixels(page)
    # the mouth region (lower middle of the face) changes; the drawing is not blank
    mouth = (slice(230, 340), slice(130, 290))
    changed = np.any(closed[mouth] != opened[mouth], axis=-1).mean()
    assert changed > 0.05, f"only {changed:.1%} of the mouth's pixels changed"
    assert closed[..., 3].mean() > 50
    latency = page.evaluate("window.a2fDemo.latencyMs")
    assert latency is not None and 0 < latency < 2000
    page.evaluate("window.a2fDemo.resume()")
    # the screenshot for the README: mid-sentence, mouth open
    page.evaluate(f"window.a2fDemo.renderFrame({open_i})")
    time.sleep(0.3)  # the plot keeps scrolling with the live frames
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    page.evaluate("window.a2fDemo.stop()")
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_vrm_libraries_load_from_the_service(page) -> None:
    """The vendored three.js and three-vrm resolve through the page's import map."""
    loaded = page.evaluate(
        """async () => {
            const THREE = await import("three");
            const vrm = await import("@pixiv/three-vrm");
            await import("three/addons/loaders/GLTFLoader.js");
            return [THREE.REVISION, typeof vrm.VRMLoaderPlugin];
        }"""
    )
    assert loaded[0].isdigit() and loaded[1] == "function"
