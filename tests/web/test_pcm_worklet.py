"""The microphone's AudioWorklet (``web/pcm-worklet.js``) run under Node with the three
globals an AudioWorkletGlobalScope gives it: its resampling to 16 kHz keeps speech-band
tones and removes what would alias. Skips with one line where ``node`` is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

WORKLET = (
    Path(__file__).resolve().parents[2] / "src" / "audio2face" / "server" / "web" / "pcm-worklet.js"
)
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed; worklet test skipped")

HARNESS = """
const [rate, freq, seconds, blockSize] = process.argv.slice(1).map(Number);  // node -e: no script name
const out = [];
globalThis.sampleRate = rate;
globalThis.AudioWorkletProcessor = class { constructor() {
  this.port = { postMessage: (buf) => out.push(...new Int16Array(buf)) }; } };
let Processor;
globalThis.registerProcessor = (name, cls) => { Processor = cls; };
require(process.env.WORKLET);
const p = new Processor({ processorOptions: { targetRate: 16000, chunkMs: 20 } });
const n = Math.round(rate * seconds);
for (let i = 0; i < n; i += blockSize) {
  const block = new Float32Array(Math.min(blockSize, n - i));
  for (let k = 0; k < block.length; k++) block[k] = 0.5 * Math.sin(2 * Math.PI * freq * (i + k) / rate);
  p.process([[block]]);
}
process.stdout.write(JSON.stringify(out));
"""


def resampled(rate: int, freq: float, seconds: float = 1.0, block: int = 128) -> np.ndarray:
    result = subprocess.run(
        [NODE, "-e", HARNESS, str(rate), str(freq), str(seconds), str(block)],
        capture_output=True, text=True, timeout=60, env={"WORKLET": str(WORKLET)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return np.asarray(json.loads(result.stdout), dtype=np.float64) / 32768.0


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_speech_band_tone_passes_at_16k(rate: int) -> None:
    out = resampled(rate, 1000.0)
    # chunks of 20 ms leave when full: all but the last partial one and the filter's tail
    assert 16000 - 2 * 320 <= out.shape[0] <= 16000
    steady = out[800:-800]
    assert abs(np.sqrt(np.mean(steady**2)) - 0.5 / np.sqrt(2)) < 0.01
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.shape[0])))
    peak_hz = np.argmax(spectrum) * 16000 / steady.shape[0]
    assert abs(peak_hz - 1000.0) < 5.0


@pytest.mark.parametrize("rate", [48000, 44100])
def test_tones_above_8k_do_not_alias(rate: int) -> None:
    out = resampled(rate, 11000.0)
    assert np.sqrt(np.mean(out[800:-800] ** 2)) < 0.01  # under -31 dB of the input's 0.35


def test_block_size_does_not_change_the_output() -> None:
    a = resampled(48000, 440.0, 0.5, block=128)
    b = resampled(48000, 440.0, 0.5, block=517)
    n = min(a.shape[0], b.shape[0])
    assert np.array_equal(a[:n], b[:n])
