"""``audio2face bench``: its options, its arithmetic, its speech, and short runs against a
live server (one long utterance; short utterances on new connections)."""

from __future__ import annotations

import argparse
import asyncio
import json

import numpy as np
import pytest
import soundfile as sf
from v1_client import speechlike

from audio2face import bench
from audio2face.errors import ConfigError


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="audio2face bench")
    bench.add_arguments(ap)
    return ap.parse_args(argv)


def test_frame_latency_is_arrival_minus_send_of_the_body_holding_its_last_sample() -> None:
    sent = np.arange(10) * 0.04 + 100.0  # body k (640 samples, 40 ms) sent at 100 + 0.04 k
    sends = [(float(t), 640 * (k + 1)) for k, t in enumerate(sent)]
    # 12 frames (0.4 s); the first 6 arrive at 100.5, the rest at 101.0
    stats = bench.utterance_stats(sends, [(100.5, 6), (101.0, 12)], end_sent=100.45,
                                  end_received=101.0, expected=12)  # fmt: skip
    assert stats.frames == 12 and stats.expected == 12
    # frame 0 ends at sample 533 -> body 0; frame 5 ends at 3200 -> body 4 (samples 2560..3199)
    assert stats.latencies[0] == 100.5 - sent[0]
    assert stats.latencies[5] == 100.5 - sent[4]
    assert stats.latencies[11] == 101.0 - sent[9]  # the last body holds the last frame's end
    assert stats.first_frame_s == 100.5 - sent[0]
    assert abs(stats.after_end_s - 0.55) < 1e-9


def test_help_lists_real_options(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        bench.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--streams", "--seconds", "--utterances", "--short-seconds", "--protocol",
                   "--wav", "--out", "--token", "--p95-bound"):  # fmt: skip
        assert option in text
    assert "bench_args" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--streams", "0,2"], "stream counts >= 1"),
        (["--streams", "a"], "like 1,2,4,8"),
        (["--seconds", "-1"], "must be > 0"),
        (["--short-seconds", "6,2"], "0 < MIN <= MAX"),
        (["--protocol", "v9"], "invalid choice: 'v9'"),
        (["--modes", "bogus"], "known: ['as-set', 'window', 'segment']"),
    ],
)
def test_bad_options_are_refused_in_one_line(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err


def test_short_mode_makes_utterances_of_the_asked_lengths() -> None:
    speech = (np.arange(16000 * 20) % 1000).astype("<i2")
    args = parse(["--utterances", "short", "--seconds", "15", "--short-seconds", "2,6"])
    jobs = bench.make_jobs(speech, 5, args)
    assert len(jobs) == 5
    for job in jobs:
        seconds = [len(p) / 2 / 16000 for p in job.utterances]
        assert all(2.0 <= s <= 6.0 for s in seconds)
        assert sum(seconds) >= 15.0 and sum(seconds[:-1]) < 15.0
        assert 0 <= job.delay_s <= 1.0
    # different speech per stream
    assert len({job.utterances[0][:64] for job in jobs}) == 5
    one = bench.make_jobs(speech, 2, parse(["--seconds", "30"]))
    assert [len(j.utterances) for j in one] == [1, 1]
    assert len(one[0].utterances[0]) == 30 * 16000 * 2  # wraps around a shorter clip


def test_speech_needs_no_system_package_with_wav(tmp_path) -> None:
    sf.write(tmp_path / "a.wav", speechlike(1.0, rate=22050), 22050)
    sf.write(tmp_path / "b.flac", speechlike(0.5, rate=16000, seed=1), 16000)
    one = bench.load_speech(tmp_path / "a.wav")
    assert one.dtype == np.dtype("<i2") and abs(len(one) - 16000) <= 1
    both = bench.load_speech(tmp_path)  # a folder: its files in name order
    assert abs(len(both) - 24000) <= 2
    with pytest.raises(ConfigError, match="no such file") as info:
        bench.load_speech(tmp_path / "nope.wav")
    assert "\n" not in str(info.value)


def test_without_espeak_the_message_names_the_package_and_wav(monkeypatch) -> None:
    from audio2face.engines.phonemes import espeak

    def unavailable(*_args, **_kwargs):
        raise espeak.EspeakUnavailableError("libespeak-ng is not installed")

    monkeypatch.setattr(espeak, "synthesize", unavailable)
    with pytest.raises(ConfigError) as info:
        bench.load_speech(None)
    message = str(info.value)
    assert "--wav" in message and "apt-get install espeak-ng" in message and "\n" not in message


def test_synthesised_speech_when_espeak_is_there() -> None:
    from audio2face.engines.phonemes import espeak

    if not espeak.available():
        pytest.skip("libespeak-ng is not installed (apt-get install espeak-ng)")
    speech = bench.load_speech(None)
    assert len(speech) > 20 * 16000 and np.abs(speech).max() > 3000


@pytest.mark.parametrize("protocol", sorted(bench.PROTOCOLS))
def test_one_paced_stream_gets_every_frame(unitalker_server, protocol: str) -> None:
    t = np.arange(int(1.2 * 16000)) / 16000
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()
    url = unitalker_server.http_url.replace("http", "ws", 1) + bench.PROTOCOLS[protocol].path
    target = bench.Target(url, None, "", 40.0)
    stats = asyncio.run(bench.PROTOCOLS[protocol].driver(target).utterance(pcm))
    assert stats.error is None
    assert stats.frames == stats.expected == 36
    assert len(stats.latencies) == 36 and min(stats.latencies) > 0
    assert stats.connect_s is not None and stats.connect_s >= 0


def test_a_failed_utterance_is_an_error_not_a_crash(unitalker_server) -> None:
    wrong = unitalker_server.ws_url.replace("streaming_audio2face", "nope")
    stats = asyncio.run(
        bench.V1Driver(bench.Target(wrong, None, "", 40.0)).utterance(b"\0\0" * 800)
    )
    assert stats.error is not None and "HTTP 403" in stats.error and stats.frames == 0


def test_short_utterances_run_writes_only_where_out_says(unitalker_server, tmp_path, monkeypatch,
                                                         capsys) -> None:  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sf.write(tmp_path / "speech.wav", speechlike(6.0, seed=3), 16000)
    out = tmp_path / "results" / "short"
    args = parse(["--url", unitalker_server.ws_url, "--streams", "2", "--seconds", "2.5",
                  "--utterances", "short", "--short-seconds", "1.25,1.25", "--stagger", "0",
                  "--wav", str(tmp_path / "speech.wav"), "--p95-bound", "5",
                  "--out", str(out)])  # fmt: skip
    assert bench.run(args) == 0
    assert list(cwd.iterdir()) == []
    doc = json.loads(out.with_suffix(".json").read_text())
    step = doc["runs"][0]["steps"][0]
    assert doc["utterances"] == "short" and doc["protocol"] == "v1"
    assert step["streams"] == 2 and step["utterances"] == 4  # 2 streams x 2 utterances each
    assert step["errors"] == 0 and step["frames_exact"] and step["frame_ratio_min"] == 1.0
    assert step["p95"] is not None and step["connect_p95"] is not None and step["meets_bound"]
    assert step["mean_batch_size"] is not None  # read from the server's /metrics
    md = out.with_suffix(".md").read_text()
    assert "short utterances of 1.25-1.25 s" in md and "| as-set | 2 | 4 |" in md
    assert "| as-set | 2 | 4 |" in capsys.readouterr().out


def test_markdown_has_one_row_per_step() -> None:
    step = {"streams": 2, "utterances": 2, "p50": 0.1, "p95": 0.2, "p99": 0.3,
            "first_frame_p50": 0.1, "after_end_p95": 0.05, "connect_p95": 0.01,
            "frame_ratio_min": 1.0, "frame_ratio_max": 1.0, "errors": 0,
            "server_cpu_cores": 0.5, "client_cpu_cores": 0.1, "mean_batch_size": 1.5,
            "meets_bound": True}  # fmt: skip
    result = {"p95_bound": 1.0, "seconds": 10.0, "chunk_ms": 40.0, "machine": "test",
              "utterances": "one", "short_seconds": [2.0, 6.0],
              "runs": [{"mode": "window", "steps": [step], "max_streams_within_bound": 2}]}  # fmt: skip
    text = bench.markdown(result)
    assert "| window | 2 | 2 | 0.1 | 0.2 |" in text and "**2**" in text
