"""Real-time outputs: frames sent at their time to avatar apps over UDP.

* :mod:`~audio2face.sinks.vmc`: the VMC protocol (OSC) for VSeeFace, VNyan, Warudo, ...
* :mod:`~audio2face.sinks.livelink`: Live Link Face packets for Unreal (MetaHumans).
* :mod:`~audio2face.sinks.pacing`: absolute-deadline pacing shared by both.
"""

from __future__ import annotations

from audio2face.sinks.base import FrameSink, SinkStats, UdpTarget, parse_target
from audio2face.sinks.livelink import (
    DEFAULT_LIVELINK_PORT,
    LiveLinkOptions,
    LiveLinkSink,
    decode_packet,
    encode_packet,
)
from audio2face.sinks.pacing import Clock, ManualClock, MonotonicClock, Pacer
from audio2face.sinks.vmc import DEFAULT_VMC_PORT, VMC_NAME_SETS, VmcNames, VmcOptions, VmcSink

__all__ = [
    "DEFAULT_LIVELINK_PORT",
    "DEFAULT_VMC_PORT",
    "VMC_NAME_SETS",
    "Clock",
    "FrameSink",
    "LiveLinkOptions",
    "LiveLinkSink",
    "ManualClock",
    "MonotonicClock",
    "Pacer",
    "SinkStats",
    "UdpTarget",
    "VmcNames",
    "VmcOptions",
    "VmcSink",
    "decode_packet",
    "encode_packet",
    "parse_target",
]
