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
import wave
from pathlib import Path

import numpy as np
import pytest

from audio2face.audio.resample import resample
from audio2face.server import create_app
from audio2face.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AUDIO2FACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_ENV = "AUDIO2FACE_SCREENSHOT"
"""Where the README's screenshot is written (``docs/demo.png`` to refresh it); unset, it
goes to a temporary folder, so a test run leaves the repository as it was."""
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


def test_microphone_streams_and_the_face_moves(page, tmp_path: Path) -> None:
    page.click("#mic")
    page.wait_for_function("window.a2fDemo.framesReceived >= 90", timeout=20_000)
    ready = page.evaluate("window.a2fDemo.ready")
    assert ready["profile"] == "arkit" and len(ready["names"]) == 52
    # one evaluate: frames keep arriving between calls
    jaw, blink = page.evaluate(
        "() => [window.a2fDemo.series('jawOpen'), window.a2fDemo.series('eyeBlinkLeft')]"
    )
    jaw, blink = np.array(jaw, dtype=float), np.array(blink, dtype=float)
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
    # the screenshot for the README: listening, mid-sentence, mouth and eyes open
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "demo.png")
    page.screenshot(path=str(ROOT / shot))
    assert (ROOT / shot).stat().st_size > 10_000
    page.evaluate("window.a2fDemo.stop()")
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_head_gaze_and_blinks_move_the_2d_face(page) -> None:
    """With ``arkit-head`` the stream carries the head pose, and the face turns, nods
    and tilts with it; the eyes follow eyeLook* and close with eyeBlink*."""
    page.evaluate("window.a2fDemo.resume()")
    page.select_option("#profile", "arkit-head")
    page.click("#mic")
    page.wait_for_function(
        "window.a2fDemo.ready && window.a2fDemo.ready.profile === 'arkit-head'"
        " && window.a2fDemo.framesReceived >= 90",
        timeout=20_000,
    )
    assert page.evaluate("window.a2fDemo.ready.names.slice(52)") == [
        "headYaw", "headPitch", "headRoll"
    ]  # fmt: skip
    yaw, look = page.evaluate(
        "() => [window.a2fDemo.series('headYaw'), window.a2fDemo.series('eyeLookOutLeft')]"
    )
    page.evaluate("window.a2fDemo.stop()")
    yaw = np.array(yaw, dtype=float)
    assert np.ptp(yaw) > 0.5, yaw  # the voice moves the head (degrees)
    assert np.array(look, dtype=float).max() > 0  # and the eyes
    # Two received frames far apart in yaw draw different faces ...
    assert page.evaluate(f"window.a2fDemo.renderFrame({int(np.argmin(yaw))})")
    left = face_pixels(page)
    assert page.evaluate(f"window.a2fDemo.renderFrame({int(np.argmax(yaw))})")
    assert np.any(left != face_pixels(page), axis=-1).mean() > 0.01
    # ... and each channel moves the face the way it says.
    rest = {"jawOpen": 0.2}

    def drawn(values: dict) -> np.ndarray:
        page.evaluate("(v) => window.a2fDemo.renderValues(v)", {**rest, **values})
        return face_pixels(page)

    def centre_x(px: np.ndarray) -> float:
        cols = np.flatnonzero(px[..., 3].max(axis=0) > 0)
        return (cols[0] + cols[-1]) / 2

    still = drawn({})
    turned = drawn({"headYaw": 20.0})  # to the avatar's left: the mirror's left
    assert centre_x(turned) < centre_x(still) - 5
    raised = drawn({"headPitch": 20.0})  # chin up: the features move up
    eyes = (slice(120, 200), slice(110, 310))
    assert np.any(raised[eyes] != still[eyes], axis=-1).mean() > 0.05
    tilted = drawn({"headRoll": 15.0})
    assert np.any(tilted != still, axis=-1).mean() > 0.05
    looking = drawn({"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0})
    assert np.any(looking[eyes] != still[eyes], axis=-1).mean() > 0.01
    closed = drawn({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})
    assert np.any(closed[eyes] != still[eyes], axis=-1).mean() > 0.02
    page.evaluate("window.a2fDemo.resume()")
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


def test_an_audio_file_plays_with_the_face_in_sync(page, tmp_path: Path) -> None:
    """A dropped or picked file: every frame of it arrives (the frame clock of its
    16 kHz resampling) before the sound needs it, and the face follows the playback."""
    rate, seconds = 22050, 1.5
    t = np.arange(int(rate * seconds)) / rate
    audio = 0.4 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((audio * 32767).astype("<i2").tobytes())
    page.evaluate("window.a2fDemo.resume()")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.a2fDemo.mode === 'file'", timeout=10_000)
    page.wait_for_function("window.a2fDemo.playbackTime > 0.5", timeout=10_000)
    # 1.5 s at 16 kHz (what the page sends) is 24000 samples: 45 frames, all there
    assert page.evaluate("window.a2fDemo.flushedFrames") == 45
    assert page.evaluate("window.a2fDemo.framesReceived") == 45
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('done')", timeout=10_000
    )
    assert page.evaluate("window.a2fDemo.mode") == "idle"
    assert not page.errors, page.errors  # type: ignore[attr-defined]


LIMBS = (
    "spine", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg",
    "rightFoot", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm",
    "rightHand",
)  # fmt: skip
"""The humanoid bones VRM 1.0 requires besides hips and head."""


def minimal_vrm(path: Path) -> Path:
    """A VRM 1.0 file built here: one triangle whose morph targets are bound to the
    ``aa`` and ``happy`` expressions, the humanoid's required bones (empty nodes), and
    the required meta."""
    import json
    import struct

    tri = np.array([[-0.1, 1.4, 0], [0.1, 1.4, 0], [0, 1.6, 0]], np.float32)
    aa = np.array([[0, -0.05, 0], [0, -0.05, 0], [0, 0, 0]], np.float32)
    happy = np.array([[-0.02, 0.02, 0], [0.02, 0.02, 0], [0, 0, 0]], np.float32)
    blobs = [tri, aa, happy]
    binary = b"".join(b.tobytes() for b in blobs)
    gltf = {
        "asset": {"version": "2.0", "generator": "audio2face tests"},
        "extensionsUsed": ["VRMC_vrm"],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 36 * i, "byteLength": 36} for i in range(len(blobs))
        ],
        "accessors": [
            {"bufferView": i, "componentType": 5126, "count": 3, "type": "VEC3",
             "min": b.min(axis=0).tolist(), "max": b.max(axis=0).tolist()}
            for i, b in enumerate(blobs)
        ],  # fmt: skip
        "meshes": [
            {
                "name": "face",
                "primitives": [{"attributes": {"POSITION": 0}, "targets": [{"POSITION": 1}, {"POSITION": 2}]}],
                "extras": {"targetNames": ["aa", "happy"]},
            }
        ],
        "nodes": [
            {"name": "hips", "children": [1, *range(3, 3 + len(LIMBS))]},
            {"name": "head", "children": [2], "translation": [0, 1.5, 0]},
            {"name": "face", "mesh": 0, "translation": [0, -1.5, 0]},
            *({"name": bone} for bone in LIMBS),
        ],
        "scenes": [{"nodes": [0]}],
        "scene": 0,
        "extensions": {
            "VRMC_vrm": {
                "specVersion": "1.0",
                "meta": {"name": "triangle", "authors": ["audio2face tests"],
                         "licenseUrl": "https://vrm.dev/licenses/1.0/"},
                "humanoid": {"humanBones": {
                    "hips": {"node": 0}, "head": {"node": 1},
                    **{bone: {"node": 3 + i} for i, bone in enumerate(LIMBS)},
                }},
                "expressions": {"preset": {
                    "aa": {"morphTargetBinds": [{"node": 2, "index": 0, "weight": 1.0}]},
                    "happy": {"morphTargetBinds": [{"node": 2, "index": 1, "weight": 1.0}]},
                }},
            }
        },
    }  # fmt: skip
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    chunks += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks)
    return path


def test_a_vrm_avatar_is_driven_by_the_vrm_profile(page, tmp_path: Path) -> None:
    """Load a .vrm: the page switches to the vrm profile, and speech moves the avatar's
    morph targets through its expressions (three.js and three-vrm from the wheel)."""
    page.evaluate("window.a2fDemo.resume()")
    page.set_input_files("#vrm-file", str(minimal_vrm(tmp_path / "triangle.vrm")))
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('expressions')", timeout=10_000
    )
    assert page.input_value("#profile") == "vrm"
    assert page.is_visible("#vrm") and not page.is_visible("#face")
    page.click("#mic")
    page.wait_for_function("window.a2fDemo.ready && window.a2fDemo.ready.profile === 'vrm'")
    # the jaw opens on speech: the "aa" morph target follows (it starts at 0)
    page.wait_for_function("window.a2fDemo.vrmInfluences().face[0] > 0.1", timeout=15_000)
    page.evaluate("window.a2fDemo.stop()")
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_a_vrm_avatar_turns_its_head_with_vrm_head(page, tmp_path: Path) -> None:
    """With ``vrm-head`` the avatar's head bone follows the voice's head pose."""
    page.evaluate("window.a2fDemo.resume()")
    page.set_input_files("#vrm-file", str(minimal_vrm(tmp_path / "triangle.vrm")))
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('expressions')", timeout=10_000
    )
    page.select_option("#profile", "vrm-head")
    page.click("#mic")
    page.wait_for_function(
        "window.a2fDemo.ready && window.a2fDemo.ready.profile === 'vrm-head'"
        " && window.a2fDemo.framesReceived >= 60",
        timeout=20_000,
    )
    poses = []
    for _ in range(5):
        page.wait_for_timeout(150)
        poses.append(page.evaluate("window.a2fDemo.vrmPose().head"))
    page.evaluate("window.a2fDemo.stop()")
    quats = np.array(poses, dtype=float)
    assert np.allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-5)
    assert np.abs(quats[:, :3]).max() > 1e-3  # turned away from the rest pose
    assert np.ptp(quats[:, :3], axis=0).max() > 1e-4  # and moving
    # The pose is the stream's: a frame's head channels set the bone's rotation.
    frame = int(page.evaluate("window.a2fDemo.framesReceived")) - 1
    yaw = page.evaluate(f"window.a2fDemo.channel({frame}, 'headYaw')")
    assert page.evaluate(f"window.a2fDemo.renderFrame({frame})")
    x, y, z, w = page.evaluate("window.a2fDemo.vrmPose().head")
    pitch, roll = (
        page.evaluate(f"window.a2fDemo.channel({frame}, '{n}')") for n in ("headPitch", "headRoll")
    )
    if abs(pitch) < 1 and abs(roll) < 1:  # then the rotation is nearly about y alone
        assert np.degrees(2 * np.arctan2(y, w)) == pytest.approx(yaw, abs=1.0)
    page.evaluate("window.a2fDemo.resume()")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
