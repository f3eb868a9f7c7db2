"""The `live` command: inputs, errors before work, Ctrl-C, servers over v1 and v2."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import live_support  # before udp_receivers: it puts tests/sinks on the path
import numpy as np
import pytest
import soundfile as sf
from live_support import speech_like
from udp_receivers import LiveLinkReceiver, VmcReceiver

from audio2face.live import FileSource, LiveRun, V1Backend, V2Backend
from audio2face.live import cli as live_cli
from audio2face.live.backends import backend_for_url
from audio2face.live.playback import DelayBuffer
from audio2face.live.runner import LiveOptions
from audio2face.live.sources import StdinSource, parse_wav_header
from audio2face.sinks import (
    LiveLinkOptions,
    LiveLinkSink,
    UdpTarget,
    VmcNames,
    VmcOptions,
    VmcSink,
)

# Fixtures shared with the other live tests (a tests/live/conftest.py would shadow
# tests/conftest.py for modules that import from it).
speech_wav = live_support.speech_wav

PYTHON = sys.executable


def live_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "audio2face.live", *args]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    live_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_stdin_raw_pcm_through_the_cli_to_vmc(tmp_path) -> None:
    pcm = (speech_like(1.5) * 32767).astype("<i2").tobytes()
    with VmcReceiver() as rx:
        proc = subprocess.run(
            live_cmd("--stdin", "--rate", "16000", "--vmc", f"127.0.0.1:{rx.port}", "-q",
                     "-o", str(tmp_path / "face.json")),
            input=pcm, capture_output=True, timeout=60,
        )  # fmt: skip
        frames = rx.wait_frames(45)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(frames) == 45
    assert set(frames[0].values) == {"A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R",
                                     "Joy", "Angry", "Sorrow", "Fun", "Surprised"}  # fmt: skip
    assert b"45 frames at 30 fps" in proc.stderr
    assert (tmp_path / "face.json").exists()


def test_ctrl_c_stops_cleanly_and_sends_what_was_taken(speech_wav, tmp_path) -> None:
    long = tmp_path / "long.wav"
    sf.write(long, speech_like(20.0), 16000, subtype="PCM_16")
    with LiveLinkReceiver() as rx:
        proc = subprocess.Popen(
            live_cmd("--file", str(long), "--livelink", f"127.0.0.1:{rx.port}", "-q"),
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not rx.packets and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        time.sleep(0.2)
    assert proc.returncode == 0, err.decode()
    summary = err.decode().strip().splitlines()[-1]
    sent = int(summary.split(" frames at ")[0].rsplit(" ", 1)[1])
    assert 30 <= sent < 600 and len(rx.packets) == sent
    assert [p.frame for _, p in rx.packets] == list(range(sent))
    assert "Traceback" not in err.decode()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vmc"], "give exactly one input"),
        (["--file", "a.wav", "--stdin", "--vmc"], "give exactly one input"),
        (["--file", "a.wav"], "nothing to send to"),
        (["--stdin", "--vmc-names", "vrm0", "--livelink"], "--vmc-names needs --vmc"),
        (["--stdin", "--vmc", "--vmc-names", "vrm0", "--livelink"], "--vmc-names arkit"),
        (["--stdin", "--vmc", "--vmc-names", "vrm7"], "unknown VMC name set 'vrm7'"),
        (["--stdin", "--vmc", "host:xx"], "not a number"),
        (["--file", "nope.wav", "--vmc"], "nope.wav"),
        (["--stdin", "--rate", "16000", "--vmc", "-o", "x.txt"], "unknown extension '.txt'"),
        (["--stdin", "--rate", "16000", "--livelink", "--profile", "mmd"], "--profile arkit"),
        (["--stdin", "--rate", "16000", "--vmc", "--profile", "bogus"], "unknown profile 'bogus'"),
        (
            ["--stdin", "--rate", "16000", "--vmc", "--url", "ws://127.0.0.1:9/api/v2/stream"],
            "is the server running",
        ),
        (
            ["--stdin", "--rate", "16000", "--vmc", "--url", "http://127.0.0.1:9/api/v1/x"],
            "not a WebSocket URL",
        ),
    ],
)
def test_errors_are_one_line_before_any_audio(argv: list[str], message: str) -> None:
    proc = subprocess.run(live_cmd(*argv), input=b"", capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert message in err and "Traceback" not in err


def test_microphone_without_sounddevice_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(ImportError, match=r"pip install 'audio2face\[live\]'"):
        live_cli.run(parse("--mic", "--vmc"))
    with pytest.raises(ImportError, match=r"audio2face\[live\]"):
        live_cli.run(parse("--list-devices"))


def test_vmc_names_choose_the_profile() -> None:
    assert live_cli._profile_and_names(parse("--vmc"))[0] == "vrm"
    assert live_cli._profile_and_names(parse("--vmc", "--livelink"))[0] == "arkit"
    assert live_cli._profile_and_names(parse("--vmc", "--vmc-names", "vrm1"))[1].name == "vrm1"
    assert live_cli._profile_and_names(parse("--livelink"))[0] is None  # the default: arkit


def test_wav_stream_header_sets_the_rate() -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    head = b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", 16) + fmt + b"data\xff\xff\xff\xff"
    parsed = parse_wav_header(head + b"\x01\x00")
    assert parsed is not None
    assert parsed[0].sample_rate == 22050 and parsed[1] == 44
    assert parse_wav_header(b"\x00" * 44) is None
    float_fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    with pytest.raises(ValueError, match="16-bit PCM"):
        parse_wav_header(
            b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", 16) + float_fmt + b"data\0\0\0\0"
        )

    samples = (np.arange(2205) % 100).astype("<i2")
    read_fd, write_fd = os.pipe()
    data = head + samples.tobytes()

    def write() -> None:
        for i in range(0, len(data), 1000):  # a writer that trickles
            os.write(write_fd, data[i : i + 1000])
            time.sleep(0.002)
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    source = StdinSource(None, 0.02, fd=read_fd)

    async def read_all() -> np.ndarray:
        await source.open()
        return np.concatenate([b.audio async for b in source.blocks()])

    audio = asyncio.run(read_all())
    writer.join()
    os.close(read_fd)
    assert source.rate == 22050
    np.testing.assert_allclose(audio * 32768, samples)


def test_delay_buffer_keeps_order_and_bounds() -> None:
    buf = DelayBuffer(max_samples=10)
    buf.write(np.arange(4, dtype=np.float32))
    buf.write(np.arange(4, 8, dtype=np.float32))
    np.testing.assert_array_equal(buf.read(3), [0, 1, 2])
    np.testing.assert_array_equal(buf.read(6), [3, 4, 5, 6, 7, 0])
    assert buf.underruns == 1
    buf.write(np.arange(8, dtype=np.float32))
    buf.write(np.arange(8, dtype=np.float32))
    assert buf.size <= 10


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="fps"):
        LiveOptions(fps=0)
    with pytest.raises(ValueError, match="delay"):
        LiveOptions(delay_s=-1)
    assert LiveOptions(block_s=0.02).delay_for(0.1) == pytest.approx(0.15)


def test_through_a_v1_server(unitalker_server, speech_wav) -> None:
    """--url: the same run with the model on a server (one body per frame)."""
    with VmcReceiver() as rx:
        backend = V1Backend(unitalker_server.ws_url, token=None, profile="", emotion=None)
        live = LiveRun(
            FileSource(speech_wav, 0.02),
            backend,
            lambda names, fps: [
                VmcSink(names, VmcNames.load("arkit"), VmcOptions(UdpTarget("127.0.0.1", rx.port)))
            ],  # fmt: skip
            LiveOptions(delay_s=0.4),
        )
        stats = asyncio.run(live.run())
        frames = rx.wait_frames(90)
    assert stats.frames_sent == len(frames) == 90
    assert "JawOpen" in frames[10].values
    assert [round(f.times[0] * 30) for f in frames] == list(range(90))
    assert all(0.0 <= v <= 1.0 for f in frames for v in f.values.values())


def test_through_a_v2_server(unitalker_server, speech_wav) -> None:
    """--url .../api/v2/stream: names, rate and look-ahead from ``ready``, binary frames."""
    url = unitalker_server.ws_url.replace("/api/v1/streaming_audio2face/ws", "/api/v2/stream")
    with LiveLinkReceiver() as rx:
        backend = backend_for_url(url, token=None, profile=None, emotion=None)
        assert isinstance(backend, V2Backend)
        live = LiveRun(
            FileSource(speech_wav, 0.02),
            backend,
            lambda names, fps: [
                LiveLinkSink(names, fps, LiveLinkOptions(UdpTarget("127.0.0.1", rx.port)))
            ],
        )
        stats = asyncio.run(live.run())
        packets = rx.wait_packets(90)
    assert stats.frames_sent == len(packets) == 90
    assert [p.frame for _, p in packets] == list(range(90))
    assert stats.delay_s > 0.05  # the server's look-ahead went into the automatic delay


def test_module_entry_point_help() -> None:
    out = subprocess.run(live_cmd("--help"), capture_output=True, timeout=60, env=os.environ)
    assert out.returncode == 0 and b"--vmc-names" in out.stdout
    assert Path(live_cli.__file__).name == "cli.py"


def test_status_line_and_summary(speech_wav) -> None:
    import io

    from audio2face.live.status import StatusLine, format_status, summary

    live = LiveRun(FileSource(speech_wav, 0.02), None, lambda names, fps: [])  # type: ignore[arg-type]
    live.stats.level_dbfs, live.stats.last_latency_s, live.stats.late = -23.4, 0.143, 2
    line = format_status(live, {"vmc 127.0.0.1:39539": 60.0}, 30.0)
    assert (
        line
        == "in  -23.4 dBFS |  30.0 fps | latency  143 ms | vmc 127.0.0.1:39539  60.0 pkt/s | late 2"
    )
    live.stats.latencies.extend([0.14, 0.15])
    live.stats.frames_sent, live.stats.fps, live.stats.seconds_in = 2, 30.0, 0.1
    assert "latency p50 145 ms" in summary(live) and "2 frames late" in summary(live)

    out = io.StringIO()
    status = StatusLine(live, out, interval_s=0.01)

    async def briefly() -> None:
        task = asyncio.create_task(status.loop())
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(briefly())
    status.clear()
    assert out.getvalue().startswith("\rin ") and out.getvalue().endswith("\r")
