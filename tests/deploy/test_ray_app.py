"""The Ray Serve application's configuration (deploy/ray), without a cluster: the
deployment options it builds and the checks on its arguments. The cluster test is
tests/deploy/test_ray_serve.py (A2F_RAY_TEST=1)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest

from audio2face.errors import ConfigError

pytest.importorskip("ray.serve", reason="pip install 'audio2face[ray]'")
yaml = pytest.importorskip("yaml", reason="pip install pyyaml")

RAY_APP_DIR = Path(__file__).resolve().parents[2] / "deploy" / "ray"
sys.path.insert(0, str(RAY_APP_DIR))
import audio2face_serve  # noqa: E402

sys.path.remove(str(RAY_APP_DIR))


def options(app) -> dict:
    deployment = app._bound_deployment
    config = deployment._deployment_config
    return {
        "max_ongoing": config.max_ongoing_requests,
        "autoscaling": config.autoscaling_config,
        "grace": config.graceful_shutdown_timeout_s,
        "actor": deployment.ray_actor_options,
    }


def test_scaling_and_drain_follow_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("AUDIO2FACE_MAX_STREAMS", "50")
    monkeypatch.setenv("AUDIO2FACE_SHUTDOWN_DRAIN_S", "20")
    got = options(audio2face_serve.build({"max_replicas": "6", "target_streams": "30"}))
    assert got["max_ongoing"] == 50  # Ray queues no more on a replica than it admits
    auto = got["autoscaling"]
    assert (auto.min_replicas, auto.max_replicas, auto.target_ongoing_requests) == (1, 6, 30)
    assert got["grace"] > 20  # Ray waits longer than the service's own drain
    env = got["actor"]["runtime_env"]["env_vars"]
    assert env["AUDIO2FACE_MAX_STREAMS"] == "50"  # the driver's settings reach replicas


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"replicas": "2"}, "unknown Ray app argument"),
        ({"min_replicas": "3", "max_replicas": "2"}, "need 0 <= min <= max"),
        ({"target_streams": "1000"}, "at most max_streams"),
        ({"num_cpus": "two"}, "is not a number"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(args: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        audio2face_serve.build(args)


def test_serve_config_is_valid_for_ray() -> None:
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load((RAY_APP_DIR / "serve_config.yaml").read_text(encoding="utf-8"))
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "audio2face_serve:build"
    assert set(app.args) <= set(audio2face_serve.KNOWN_ARGS)


def test_replica_tag_marks_responses_and_handshakes() -> None:
    sent = []

    async def app(scope, receive, send) -> None:
        await send({"type": "websocket.accept", "headers": [(b"a", b"1")]})
        await send({"type": "websocket.close", "code": 1000})

    async def send(message) -> None:
        sent.append(message)

    asyncio.run(audio2face_serve.ReplicaTag(app, "r1")({"type": "websocket"}, None, send))
    assert sent[0]["headers"] == [(b"a", b"1"), (b"x-a2f-replica", b"r1")]
    assert "headers" not in sent[1]


def test_lost_replica_is_closed_with_1012_once() -> None:
    async def dies_after_accept(scope, receive, send) -> None:
        await send({"type": "websocket.accept"})
        raise ConnectionError("replica actor died")

    async def closes_itself(scope, receive, send) -> None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    for app, codes in ((dies_after_accept, [1012]), (closes_itself, [1000])):
        sent: list[dict] = []

        async def send(message, sent=sent) -> None:
            sent.append(message)

        wrapped = audio2face_serve.CloseLostStreams(app)
        with contextlib.suppress(ConnectionError):  # the proxy's own handling, not ours
            asyncio.run(wrapped({"type": "websocket"}, None, send))
        assert [m["code"] for m in sent if m["type"] == "websocket.close"] == codes
