"""Live Link Face sink against a loopback receiver that parses each packet."""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest
from udp_receivers import LiveLinkReceiver

from audio2face.rigs import ARKIT_52, load_rig
from audio2face.sinks import LiveLinkOptions, LiveLinkSink, UdpTarget, decode_packet
from audio2face.sinks.livelink import LIVELINK_VERSION, encode_packet, rate_fraction


def test_packet_layout_byte_by_byte() -> None:
    values = np.arange(52, dtype=np.float32) / 100
    data = encode_packet("DEV-1", "audio2face", 42, Fraction(30), values)
    assert data[0] == LIVELINK_VERSION == 6
    assert data[1:5] == struct.pack(">i", 5) and data[5:10] == b"DEV-1"
    assert data[10:14] == struct.pack(">i", 10) and data[14:24] == b"audio2face"
    assert struct.unpack(">ifii", data[24:40]) == (42, 0.0, 30, 1)
    assert data[40] == 61
    floats = struct.unpack(">61f", data[41:])
    assert len(data) == 41 + 61 * 4
    np.testing.assert_allclose(floats[:52], values, atol=1e-7)
    assert floats[52:] == (0.0,) * 9
    packet = decode_packet(data)
    assert (packet.version, packet.device_id, packet.subject, packet.frame) == (
        6,
        "DEV-1",
        "audio2face",
        42,
    )
    with pytest.raises(ValueError, match="ends inside"):
        decode_packet(data[:-3])


def test_rates_as_fractions() -> None:
    assert rate_fraction(30.0) == Fraction(30, 1)
    assert rate_fraction(60.0) == Fraction(60, 1)
    assert rate_fraction(30000 / 1001) == Fraction(30000, 1001)


def test_sink_sends_arkit_in_apple_order_matched_by_name() -> None:
    # Channels in a shuffled order and PascalCase: the sink matches by name.
    rng = np.random.default_rng(1)
    order = rng.permutation(52)
    channels = tuple(ARKIT_52[i][0].upper() + ARKIT_52[i][1:] for i in order)
    values = rng.random((8, 52)).astype(np.float32)
    with LiveLinkReceiver() as rx:
        sink = LiveLinkSink(
            channels,
            60.0,
            LiveLinkOptions(UdpTarget("127.0.0.1", rx.port), subject="Face", device_id="X"),
        )
        for k in range(8):
            sink.send(k, values[k], k / 60)
        sink.close()
        got = rx.wait_packets(8)
    assert not rx.errors and len(got) == 8
    for k, (_, packet) in enumerate(got):
        assert (packet.subject, packet.device_id, packet.frame, packet.rate) == ("Face", "X", k, 60)
        expected = np.empty(52, np.float32)
        expected[order] = values[k]
        np.testing.assert_allclose(packet.values[:52], expected, atol=1e-7)
        assert np.all(packet.values[52:] == 0)
    assert ARKIT_52.index("jawLeft") == 15 and ARKIT_52.index("jawRight") == 16  # Apple's enum


def test_non_arkit_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="--profile arkit"):
        LiveLinkSink(load_rig("vrm"), 30.0, LiveLinkOptions())
    with pytest.raises(ValueError, match="subject"):
        LiveLinkOptions(subject="")


def test_head_pose_fills_the_head_columns_in_radians() -> None:
    """``arkit-head``'s head channels go out as Live Link Face's head rotation, in
    radians and ARKit face-anchor axes (pitch and roll flip: a lifted chin is a
    negative pitch there); the eye rotations stay 0."""
    channels = ARKIT_52 + ("headYaw", "headPitch", "headRoll")
    values = np.zeros((3, 55), np.float32)
    values[:, 52:] = [(10.0, 5.0, -2.0), (0.0, 0.0, 0.0), (-30.0, -8.0, 12.0)]
    values[:, 0] = 0.25
    with LiveLinkReceiver() as rx:
        sink = LiveLinkSink(channels, 30.0, LiveLinkOptions(UdpTarget("127.0.0.1", rx.port)))
        for k in range(3):
            sink.send(k, values[k], k / 30)
        sink.close()
        got = rx.wait_packets(3)
    assert not rx.errors and len(got) == 3
    for k, (_, packet) in enumerate(got):
        yaw, pitch, roll = np.radians(values[k, 52:])
        np.testing.assert_allclose(packet.values[52:55], [yaw, -pitch, -roll], atol=1e-6)
        assert not packet.values[55:].any()
        assert packet.values[0] == pytest.approx(0.25)


def test_csv_head_columns(tmp_path) -> None:
    import csv

    from audio2face.formats.livelink import read_livelink_csv, write_livelink_csv
    from audio2face.types import FrameBatch

    names = ARKIT_52 + ("headYaw", "headPitch", "headRoll")
    values = np.zeros((2, 55), np.float32)
    values[:, 52:] = [(10.0, 5.0, -2.0), (0.0, 0.0, 0.0)]
    write_livelink_csv(tmp_path / "h.csv", FrameBatch(0, names, values, 30.0))
    rows = list(csv.DictReader((tmp_path / "h.csv").read_text("utf-8").splitlines()))
    assert float(rows[0]["HeadYaw"]) == pytest.approx(np.radians(10.0), abs=1e-6)
    assert float(rows[0]["HeadPitch"]) == pytest.approx(-np.radians(5.0), abs=1e-6)
    assert float(rows[0]["HeadRoll"]) == pytest.approx(np.radians(2.0), abs=1e-6)
    assert rows[1]["HeadYaw"] == "0" and rows[0]["LeftEyeYaw"] == "0"
    assert read_livelink_csv(tmp_path / "h.csv").values.shape == (2, 52)
    write_livelink_csv(tmp_path / "p.csv", FrameBatch(0, ARKIT_52, values[:, :52], 30.0))
    plain = list(csv.DictReader((tmp_path / "p.csv").read_text("utf-8").splitlines()))
    assert plain[0]["HeadYaw"] == "0"
