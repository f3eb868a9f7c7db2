"""Security: no log endpoints, optional token auth on HTTP and WebSocket, CORS,
nothing echoed from request headers, names that cannot reach files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from hardening_support import (
    body,
    end,
    exchange,
    expected_frames,
    hardening_settings,
    pcm16,
    speechlike,
    start,
    start_server,
    steady_profile_dir,
    wait_clean,
)

from audio2face.client import V1Client

TOKEN = "s3cret-token-0123456789"
LOG_PATHS = [
    "/tail_log", "/log", "/logs", "/logs/download", "/download_log", "/log/download",
    "/api/v1/tail_log", "/api/v1/logs", "/static/../server.log", "/docs", "/redoc",
    "/openapi.json", "/debug", "/admin", "/config", "/settings", "/env",
]  # fmt: skip


@pytest.fixture(scope="module")
def auth_server(tiny_unitalker_path: Path, tmp_path_factory: pytest.TempPathFactory):
    profiles = steady_profile_dir(tmp_path_factory.mktemp("profiles_auth"))
    settings = hardening_settings(
        tiny_unitalker_path, profiles, auth_token=TOKEN,
        cors_origins=("https://app.example",),
    )  # fmt: skip
    with start_server(settings) as server:
        yield server


def test_no_endpoint_serves_logs_or_internals(hard_server) -> None:
    for path in LOG_PATHS:
        for method in ("GET", "POST"):
            r = httpx.request(method, hard_server.http_url + path)
            assert r.status_code in (404, 405), (method, path, r.status_code)
    routes = {getattr(r, "path", "") for r in hard_server.app.routes}
    assert routes == {
        "/health", "/ready", "/metrics", "/api/v1/streaming_audio2face/ws", "/api/v1/animate",
        "/api/v2/stream", "/api/v2/info", "/", "/web",  # protocol v2 and the demo page
    }  # fmt: skip


def test_auth_is_off_by_default(hard_server) -> None:
    assert httpx.get(hard_server.http_url + "/metrics").status_code == 200
    out = asyncio.run(exchange(hard_server.ws_url, [start(), end()]))
    assert out.got_end


@pytest.mark.parametrize(
    ("headers", "query", "ok"),
    [
        ({}, "", False),
        ({"Authorization": f"Bearer {TOKEN}"}, "", True),
        ({"Authorization": f"bearer {TOKEN}"}, "", True),
        ({"X-API-Key": TOKEN}, "", True),
        ({}, f"?access_token={TOKEN}", True),
        ({"Authorization": f"Bearer {TOKEN}x"}, "", False),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "", False),
        ({"Authorization": TOKEN}, "", False),  # no scheme
        ({"X-API-Key": ""}, "", False),
        ({"Authorization": "Basic " + TOKEN}, "", False),
    ],
)
def test_token_on_http_and_websocket(auth_server, headers, query, ok) -> None:
    r = httpx.get(auth_server.http_url + "/metrics" + query, headers=headers)
    assert r.status_code == (200 if ok else 401)
    if not ok:
        assert r.headers.get("www-authenticate") == "Bearer"
        assert TOKEN not in r.text
    # probes stay open for orchestrators
    assert httpx.get(auth_server.http_url + "/health").status_code == 200
    assert httpx.get(auth_server.http_url + "/ready").status_code == 200
    pcm = pcm16(speechlike(0.5))
    out = asyncio.run(
        exchange(
            auth_server.ws_url + query, [start(), body(pcm), end()], headers=headers
        )  # fmt: skip
    )
    if ok:
        assert out.got_end and out.frames().shape[0] == expected_frames(len(pcm) // 2)
    else:
        assert out.close_code == 1008 and "token" in out.close_reason
        assert TOKEN not in out.close_reason and not out.messages
    wait_clean(auth_server)


def test_auth_refusals_are_counted(auth_server) -> None:
    m = auth_server.app.state.a2f.metrics
    before = m.refusals.labels(limit="auth")._value.get()
    asyncio.run(exchange(auth_server.ws_url, [start(), end()]))
    assert m.refusals.labels(limit="auth")._value.get() == before + 1


def test_cors_is_off_by_default(hard_server) -> None:
    r = httpx.get(hard_server.http_url + "/health", headers={"Origin": "https://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in r.headers)
    r = httpx.options(
        hard_server.http_url + "/metrics",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_only_configured_origins(auth_server) -> None:
    pre = {"Access-Control-Request-Method": "GET"}
    r = httpx.options(
        auth_server.http_url + "/health", headers={"Origin": "https://app.example", **pre}
    )
    assert r.headers.get("access-control-allow-origin") == "https://app.example"
    r = httpx.options(
        auth_server.http_url + "/health", headers={"Origin": "https://evil.example", **pre}
    )
    assert r.headers.get("access-control-allow-origin") != "https://evil.example"
    assert r.headers.get("access-control-allow-origin") != "*"


def test_cors_wildcard_never_with_credentials(tiny_unitalker_path, tmp_path) -> None:
    settings = hardening_settings(
        tiny_unitalker_path, steady_profile_dir(tmp_path), cors_origins=("*",)
    )
    with start_server(settings) as server:
        r = httpx.options(
            server.http_url + "/health",
            headers={"Origin": "https://any.example", "Access-Control-Request-Method": "GET"},
        )
        assert r.headers.get("access-control-allow-origin") == "*"
        assert r.headers.get("access-control-allow-credentials") != "true"
        r = httpx.get(server.http_url + "/health", headers={"Origin": "https://any.example"})
        assert r.headers.get("access-control-allow-credentials") != "true"


MARKER = "zq-echo-7c1f-<script>alert(1)</script>"


@pytest.mark.parametrize(
    "path", ["/nope", "/metrics", "/health", "/api/v1/streaming_audio2face/ws", "/api/v1/animate"]
)
def test_error_responses_never_echo_request_headers(auth_server, hard_server, path) -> None:
    weird = {"X-Weird": MARKER, "User-Agent": MARKER, "Referer": MARKER,
             "Authorization": f"Bearer {MARKER}", "X-API-Key": MARKER, "Cookie": f"a={MARKER}"}  # fmt: skip
    for server in (auth_server, hard_server):
        for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
            r = httpx.request(method, server.http_url + path, headers=weird)
            assert MARKER not in r.text
            assert all(MARKER not in v for v in r.headers.values())
    # and the WebSocket close reason
    out = asyncio.run(exchange(auth_server.ws_url, [start()], headers={"X-API-Key": MARKER}))
    assert MARKER not in out.close_reason


def test_profile_names_with_traversal_cannot_reach_files(hard_server, tmp_path) -> None:
    """A profile file planted outside profile_dir is never loaded, whatever the name."""
    planted = tmp_path / "evil.toml"
    planted.write_text(
        'name = "evil"\nengine = "unitalker"\ninput_rig = "unitalker51"\nrig = "unitalker51"\n'
        '[[steps]]\ntype = "scale"\nfactor = 0.0\n',
        encoding="utf-8",
    )
    pcm = pcm16(speechlike(0.5, seed=1))
    ref = asyncio.run(exchange(hard_server.ws_url, [start(), body(pcm), end()]))
    rel = Path("..") / ".." / planted.relative_to(planted.anchor)
    for name in [str(planted), str(planted.with_suffix("")), str(rel), "../evil", "..%2fevil",
                 "evil", "/etc/passwd", "../../../../../../etc/passwd"]:  # fmt: skip
        out = asyncio.run(exchange(hard_server.ws_url, [start(profile=name), body(pcm), end()]))
        if not out.got_end:  # refused as an unknown name, never loaded from the path
            assert out.close_code == 1008 and "unknown profile" in out.close_reason
            continue
        assert out.names == ref.names  # the default profile, not the planted one
        np.testing.assert_array_equal(out.frames(), ref.frames())
    wait_clean(hard_server)


def test_websocket_refusal_when_auth_fails_keeps_no_stream(auth_server) -> None:
    async def many() -> None:
        for _ in range(20):
            async with V1Client(auth_server.ws_url).connect() as conn:
                await conn.send(start())
                assert [r async for r in conn.responses()] == []
                assert conn.close_code == 1008

    asyncio.run(many())
    wait_clean(auth_server)
