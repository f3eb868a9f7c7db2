"""The benchmark's own arithmetic, and one short paced stream against a live server."""

from __future__ import annotations

import asyncio

import numpy as np

from audio2face import bench


def test_frame_latency_is_arrival_minus_send_of_the_body_holding_its_last_sample() -> None:
    chunk = 640  # 40 ms bodies
    sent = np.arange(10) * 0.04 + 100.0  # body k sent at 100 + 0.04 k
    # 12 frames (0.4 s); first 6 arrive at 100.5, the rest with the End at 101.0
    stats = bench._stats([(100.5, 6), (101.0, 12)], sent, end_sent=100.45, chunk=chunk,
                         expected=12)  # fmt: skip
    assert stats.frames == 12 and stats.expected == 12
    # frame 0 ends at sample 533 -> body 0; frame 5 ends at 3200 -> body 4 (samples 2560..3199)
    assert stats.latencies[0] == 100.5 - sent[0]
    assert stats.latencies[5] == 100.5 - sent[4]
    assert stats.latencies[11] == 101.0 - sent[9]  # the last body holds the last frame's end
    assert stats.first_frame_s == 100.5 - sent[0]
    assert abs(stats.after_end_s - 0.55) < 1e-9


def test_one_paced_stream_gets_every_frame(unitalker_server) -> None:
    t = np.arange(int(1.2 * 16000)) / 16000
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2")
    stats = asyncio.run(bench.run_stream(unitalker_server.ws_url, pcm, 0.0, 40.0, ""))
    assert stats.error is None
    assert stats.frames == stats.expected == 36
    assert len(stats.latencies) == 36 and min(stats.latencies) > 0


def test_markdown_has_one_row_per_step() -> None:
    step = {"streams": 2, "p50": 0.1, "p95": 0.2, "p99": 0.3, "first_frame_p50": 0.1,
            "after_end_p95": 0.05, "frame_ratio_min": 1.0, "frame_ratio_max": 1.0,
            "errors": 0, "server_cpu_cores": 0.5, "client_cpu_cores": 0.1,
            "mean_batch_size": 1.5, "meets_bound": True}  # fmt: skip
    result = {"p95_bound": 1.0, "seconds": 10.0, "chunk_ms": 40.0, "machine": "test",
              "runs": [{"mode": "window", "steps": [step], "max_streams_within_bound": 2}]}  # fmt: skip
    text = bench.markdown(result)
    assert "| window | 2 | 0.1 | 0.2 |" in text and "**2**" in text
