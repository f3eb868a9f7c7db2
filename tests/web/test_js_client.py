"""The ES module client (``web/audio2face.js``) under Node: it decodes the binary frame
blocks the Python side encodes, keeps frames on a timeline, and maps channels to morph
targets by name. Skips with one line where ``node`` is missing."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audio2face.protocol.v2 import encode_frames_binary

CLIENT = (
    Path(__file__).resolve().parents[2] / "src" / "audio2face" / "server" / "web" / "audio2face.js"
)
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed; JS client test skipped"
)


def run_module(tmp_path: Path, body: str) -> object:
    """Run ``body`` as an ES module that imported the client as ``a2f``; its last
    ``console.log`` is parsed as JSON."""
    module = tmp_path / "audio2face.mjs"  # .mjs: Node treats the copy as an ES module
    module.write_text(CLIENT.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "main.mjs"
    script.write_text(f'import * as a2f from "./audio2face.mjs";\n{body}\n', encoding="utf-8")
    result = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_binary_blocks_from_python_decode_in_js(tmp_path: Path) -> None:
    values = np.random.default_rng(1).random((7, 52), dtype=np.float32)
    block = base64.b64encode(encode_frames_binary(4242, values)).decode()
    got = run_module(
        tmp_path,
        f"""const bytes = Buffer.from("{block}", "base64");
        const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
        const b = a2f.decodeFrames(buffer);
        let bad = null;
        try {{ a2f.decodeFrames(buffer.slice(0, 20)); }} catch (e) {{ bad = e.message; }}
        console.log(JSON.stringify({{first: b.first, count: b.count, channels: b.channels,
                                     values: Array.from(b.values), bad}}));""",
    )
    assert isinstance(got, dict)
    assert (got["first"], got["count"], got["channels"]) == (4242, 7, 52)
    assert np.array_equal(np.asarray(got["values"], np.float32), values.ravel())
    assert "does not hold 7 x 52" in got["bad"]


def test_timeline_interpolates_and_mapper_matches_names(tmp_path: Path) -> None:
    got = run_module(
        tmp_path,
        """const t = new a2f.FrameTimeline(["jawOpen", "mouthClose"], 30);
        t.add({first: 0, count: 2, values: new Float32Array([0, 1, 0.5, 0])});
        t.add({first: 2, count: 1, values: new Float32Array([1, 0.25])});
        const halfway = Array.from(t.at(1.5 / 30));
        const held = Array.from(t.at(10));   // past the newest frame: it holds
        const infl = [9, 9, 9];
        const map = a2f.morphTargetMapper(["jawOpen", "mouthClose"], {JAWOPEN: 2, other: 0});
        const n = map(new Float32Array([0.7, 0.1]), infl);
        console.log(JSON.stringify({halfway, held, latest: Array.from(t.latest()), infl, n,
                                    pcm: Array.from(a2f.floatToInt16(new Float32Array([-1, 0, 1, 2])))}));""",
    )
    assert isinstance(got, dict)
    assert np.allclose(got["halfway"], [0.75, 0.125])
    assert np.allclose(got["held"], [1.0, 0.25]) and np.allclose(got["latest"], [1.0, 0.25])
    assert got["infl"] == [9, 9, pytest.approx(0.7)] and got["n"] == 1
    assert got["pcm"] == [-32768, 0, 32767, 32767]
