"""Observability: every metric the issue lists on /metrics, per-stream ids and a
summary line in JSON logs, and CloudWatch shipping against a local moto server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import httpx
import pytest
from hardening_support import (
    body,
    end,
    exchange,
    pcm16,
    speechlike,
    split,
    start,
    wait_clean,
)

from audio2face.logs import JsonFormatter
from audio2face.settings import Settings

V1_LOGGER = "audio2face.server.v1"


def scrape(server) -> dict[str, float]:
    """``{series: value}`` from /metrics (samples with labels keep them in the key)."""
    text = httpx.get(server.http_url + "/metrics").text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_cover_streams_frames_audio_latency_inference_errors_refusals(
    hard_server,
) -> None:
    pcm = pcm16(speechlike(1.0, seed=2))
    asyncio.run(
        exchange(hard_server.ws_url, [start(), *[body(c) for c in split(pcm, 3200)], end()])
    )
    asyncio.run(exchange(hard_server.ws_url, [b"\xff\xff"]))  # a protocol error
    wait_clean(hard_server)
    m = scrape(hard_server)
    assert m["a2f_active_streams"] == 0
    assert m['a2f_streams_total{outcome="ok"}'] >= 1
    assert m['a2f_streams_total{outcome="ProtocolError"}'] >= 1
    assert m["a2f_frames_out_total"] >= 30
    assert m["a2f_audio_seconds_in_total"] == pytest.approx(1.0)
    assert m["a2f_frame_latency_seconds_count"] >= 1
    # per engine call, or per micro-batch for batched engines
    assert m['a2f_inference_seconds_count{engine="unitalker"}'] >= 1
    assert "a2f_queue_depth" in m and m["a2f_queue_depth"] == 0
    assert m['a2f_errors_total{kind="ProtocolError"}'] >= 1
    settings = hard_server.app.state.a2f.settings
    assert m['a2f_limit{name="max_streams"}'] == settings.max_streams
    assert m['a2f_limit{name="max_buffered_s"}'] == settings.max_buffered_s
    assert m['a2f_limit{name="send_timeout_s"}'] == settings.send_timeout_s


def test_refusals_by_limit_on_metrics(hard_server) -> None:
    limit = hard_server.app.state.a2f.settings.max_message_bytes
    before = scrape(hard_server).get('a2f_refusals_total{limit="max_streams"}', 0.0)
    state = hard_server.app.state.a2f
    # fill the stream table with placeholders: the next stream is refused with 1013
    fillers = [object() for _ in range(state.settings.max_streams)]
    state.streams.update(fillers)
    try:
        out = asyncio.run(exchange(hard_server.ws_url, [start(), end()]))
    finally:
        state.streams.difference_update(fillers)
    assert out.close_code == 1013
    assert f"max_streams={state.settings.max_streams}" in out.close_reason
    assert scrape(hard_server)['a2f_refusals_total{limit="max_streams"}'] == before + 1
    assert limit > 0


def test_json_logs_carry_stream_id_and_a_summary_line(hard_server, caplog) -> None:
    pcm = pcm16(speechlike(1.0, seed=3))
    with caplog.at_level(logging.INFO, logger=V1_LOGGER):
        asyncio.run(exchange(hard_server.ws_url, [start(), body(pcm), end()]))
        wait_clean(hard_server)
    records = [r for r in caplog.records if r.name == V1_LOGGER]
    ids = {getattr(r, "stream_id", None) for r in records}
    assert len(ids) == 1 and None not in ids, "every stream log line carries the stream id"
    docs = [json.loads(JsonFormatter().format(r)) for r in records]
    summary = [d for d in docs if "outcome" in d]
    assert len(summary) == 1
    s = summary[0]
    assert s["stream_id"] == ids.pop()
    assert s["outcome"] == "ok" and s["frames"] == 30 and s["audio_s"] == 1.0
    assert s["duration_s"] > 0 and s["rtf"] > 0 and s["engine"] == "unitalker"
    assert s["level"] == "INFO" and s["logger"] == V1_LOGGER


def test_cloudwatch_handler_needs_the_extra(monkeypatch) -> None:
    import builtins

    from audio2face.cloudwatch import cloudwatch_handler
    from audio2face.errors import ConfigError

    real_import = builtins.__import__

    def no_watchtower(name, *args, **kwargs):
        if name == "watchtower":
            raise ImportError("No module named 'watchtower'", name="watchtower")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_watchtower)
    with pytest.raises(ConfigError, match=r"audio2face\[cloudwatch\]"):
        cloudwatch_handler(Settings(cloudwatch_log_group="g"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cloudwatch_ships_json_lines_to_a_local_moto_server(monkeypatch) -> None:
    pytest.importorskip("watchtower")
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    from audio2face.cloudwatch import cloudwatch_handler

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        client = boto3.client("logs", endpoint_url=f"http://127.0.0.1:{port}")
        settings = Settings(cloudwatch_log_group="a2f-test", cloudwatch_log_stream="node-1")
        handler = cloudwatch_handler(settings, client=client)
        log = logging.getLogger("audio2face.test.cloudwatch")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            log.info("stream %s ended", "abc123", extra={
                "stream_id": "abc123", "summary": {"outcome": "ok", "frames": 30}})  # fmt: skip
            handler.flush()
        finally:
            log.removeHandler(handler)
            handler.close()
        deadline = time.monotonic() + 10
        events: list[dict] = []
        while not events and time.monotonic() < deadline:
            events = client.get_log_events(logGroupName="a2f-test", logStreamName="node-1")[
                "events"
            ]
            time.sleep(0.1)
        assert len(events) == 1
        doc = json.loads(events[0]["message"])
        assert doc["msg"] == "stream abc123 ended"
        assert doc["stream_id"] == "abc123" and doc["outcome"] == "ok" and doc["frames"] == 30
    finally:
        server.stop()
