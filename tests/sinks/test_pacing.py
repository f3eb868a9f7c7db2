"""Pacing: ~30 packets/s without drift over 60 s of audio, on an injectable clock.

The clock oversleeps every wait by 0-4 ms, as an OS does. With absolute deadlines the
lateness stays within that; a pacer that slept ``1/fps`` after each send would be
about 3.6 s behind after 1800 frames, so the test can fail.
"""

from __future__ import annotations

import asyncio

import numpy as np
from test_vmc import ramp
from udp_receivers import LiveLinkReceiver, VmcReceiver

from audio2face.rigs import ARKIT_52
from audio2face.sinks import (
    LiveLinkOptions,
    LiveLinkSink,
    ManualClock,
    Pacer,
    UdpTarget,
    VmcNames,
    VmcOptions,
    VmcSink,
)
from audio2face.sinks.pacing import PacedFrame
from audio2face.types import FrameBatch

FPS = 30.0
SECONDS = 60
N = int(SECONDS * FPS)


def test_sixty_seconds_without_drift_to_both_receivers() -> None:
    rng = np.random.default_rng(0)
    clock = ManualClock(1000.0, oversleep=lambda: float(rng.uniform(0, 0.004)), yield_s=0.001)
    batch = ramp(ARKIT_52, N)
    sent: list[PacedFrame] = []
    with VmcReceiver() as vmc_rx, LiveLinkReceiver() as ll_rx:
        sinks = [
            VmcSink(ARKIT_52, VmcNames.load("arkit"),
                    VmcOptions(UdpTarget("127.0.0.1", vmc_rx.port), max_packet_bytes=8192)),
            LiveLinkSink(ARKIT_52, FPS, LiveLinkOptions(UdpTarget("127.0.0.1", ll_rx.port))),
        ]  # fmt: skip
        pacer = Pacer(sinks, FPS, delay_s=0.1, clock=clock, on_sent=sent.append)
        pacer.start(clock.now())

        async def go() -> None:
            # Bursts of 6 frames, as 200 ms pushes of the stream runner give them.
            for start in range(0, N, 6):
                await pacer.send(FrameBatch(start, ARKIT_52, batch.values[start : start + 6], FPS))

        asyncio.run(go())
        pacer.close()
        vmc_frames = vmc_rx.wait_frames(N, timeout=10)
        ll_packets = ll_rx.wait_packets(N, timeout=10)

    # Pacing on the clock: each frame at origin + k/fps + delay, late by the oversleep only.
    assert [f.index for f in sent] == list(range(N))
    lateness = np.array([f.sent - f.due for f in sent])
    assert lateness.min() >= 0 and lateness.max() <= 0.0041
    sent_t = np.array([f.sent for f in sent]) - 1000.0
    assert abs(sent_t[-1] - (0.1 + (N - 1) / FPS)) < 0.005  # no drift after a minute
    rate = (N - 1) / (sent_t[-1] - sent_t[0])
    assert abs(rate - FPS) < 0.01
    window = np.diff(np.searchsorted(sent_t, np.arange(1, SECONDS)))
    assert set(window.tolist()) <= {29, 30, 31}  # about 30 packets in every second

    # What the receivers got: every frame, names, ranges, times and frame numbers.
    assert len(vmc_frames) == N and not vmc_rx.unknown
    assert all(len(f.values) == 52 for f in vmc_frames)
    assert all(0.0 <= v <= 1.0 for f in vmc_frames[::97] for v in f.values.values())
    assert [round(f.times[0] * FPS) for f in vmc_frames] == list(range(N))
    assert vmc_frames[1234].values["JawOpen"] == float(
        np.float32(batch.values[1234, ARKIT_52.index("jawOpen")])
    )
    assert len(ll_packets) == N and not ll_rx.errors
    assert [p.frame for _, p in ll_packets] == list(range(N))
    assert all(p.rate == 30 and p.version == 6 for _, p in ll_packets)
    got = np.stack([p.values[:52] for _, p in ll_packets])
    np.testing.assert_allclose(got, batch.values, atol=1e-7)


def test_late_frames_go_out_at_once_and_are_counted() -> None:
    clock = ManualClock(0.0)
    pacer = Pacer([], FPS, clock=clock)
    pacer.start(0.0)
    clock.t = 1.0  # the model fell a second behind: frames 0..29 are all overdue
    asyncio.run(pacer.send(ramp(ARKIT_52, 40)))
    assert pacer.stats.late == 30 and pacer.stats.frames == 40
    assert clock.t == 39 / FPS
