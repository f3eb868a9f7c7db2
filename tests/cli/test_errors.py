"""Every CLI failure is one line on stderr saying what is wrong and what to do, with a
non-zero exit status; the traceback only with ``--debug`` (issue 9, part 2, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import TOKEN, auth_server, free_port, refusing_proxy, run_cli, write_speech

V1 = "/api/v1/streaming_audio2face/ws"


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return write_speech(tmp_path / "speech.wav")


def test_stream_to_a_server_that_is_not_running(capsys, wav: Path, tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}{V1}"
    run = run_cli(capsys, "stream", str(wav), "--url", url, "-o", str(tmp_path / "o.npz"))
    line = run.error_line()
    assert run.rc == 1
    assert "cannot connect" in line and "audio2face serve" in line


def test_stream_to_a_wrong_path_names_the_v1_path(
    capsys, wav: Path, tmp_path: Path, unitalker_server
) -> None:
    url = unitalker_server.ws_url.replace(V1, "/ws")
    line = run_cli(
        capsys, "stream", str(wav), "--url", url, "-o", str(tmp_path / "o.npz")
    ).error_line()
    assert "HTTP 403" in line and V1 in line


def test_stream_to_an_http_url(capsys, wav: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:18083{V1}"
    line = run_cli(
        capsys, "stream", str(wav), "--url", url, "-o", str(tmp_path / "o.npz")
    ).error_line()
    assert "not a WebSocket URL" in line and "ws://" in line


def test_stream_without_the_token_then_with_it(
    capsys, monkeypatch, wav: Path, tmp_path: Path, tiny_unitalker_path: Path
) -> None:
    monkeypatch.delenv("AUDIO2FACE_AUTH_TOKEN", raising=False)
    out = tmp_path / "o.npz"
    with auth_server(tiny_unitalker_path) as server:
        line = run_cli(
            capsys, "stream", str(wav), "--url", server.ws_url, "-o", str(out)
        ).error_line()
        assert "1008" in line and "token" in line and "--token" in line
        assert not out.exists()
        ok = run_cli(
            capsys, "stream", str(wav), "--url", server.ws_url, "--token", TOKEN, "-o", str(out)
        )
        assert ok.rc == 0 and out.is_file(), ok.err
        # the server's own variable works too, so the token need not be on a command line
        monkeypatch.setenv("AUDIO2FACE_AUTH_TOKEN", TOKEN)
        assert run_cli(capsys, "stream", str(wav), "--url", server.ws_url, "-o", str(out)).rc == 0


@pytest.mark.parametrize("status", [401, 403])
def test_stream_refused_by_an_auth_proxy(
    capsys, monkeypatch, wav: Path, tmp_path: Path, status: int
) -> None:
    monkeypatch.delenv("AUDIO2FACE_AUTH_TOKEN", raising=False)
    with refusing_proxy(status) as url:
        line = run_cli(
            capsys, "stream", str(wav), "--url", url, "-o", str(tmp_path / "o.npz")
        ).error_line()
    assert f"HTTP {status}" in line and "--token" in line


def test_stream_with_an_unknown_profile_prints_the_servers_reason(
    capsys, wav: Path, tmp_path: Path, unitalker_server
) -> None:
    run = run_cli(
        capsys, "stream", str(wav), "--url", unitalker_server.ws_url, "--profile", "bogus",
        "-o", str(tmp_path / "o.npz"),
    )  # fmt: skip
    line = run.error_line()
    assert "1008" in line and "unknown profile 'bogus'" in line and "unitalker" in line


def test_convert_with_an_unknown_profile_lists_the_known_ones(
    capsys, wav: Path, tmp_path: Path
) -> None:
    run = run_cli(capsys, "convert", str(wav), "--profile", "bogus", "-o", str(tmp_path / "o.npz"))
    line = run.error_line()
    assert run.rc == 2 and "unknown profile 'bogus'" in line and "'arkit'" in line


def test_providers_cuda_without_a_gpu(capsys, wav: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA; the refusal needs a CPU-only build")
    run = run_cli(capsys, "convert", str(wav), "--providers", "cuda", "-o", str(tmp_path / "o.npz"))
    line = run.error_line()
    assert run.rc == 2 and "cuda" in line and "providers='cpu'" in line


def test_missing_unitalker_model_file(capsys, wav: Path, tmp_path: Path) -> None:
    run = run_cli(
        capsys, "convert", str(wav), "--unitalker-model", str(tmp_path / "nope.onnx"),
        "-o", str(tmp_path / "o.npz"),
    )  # fmt: skip
    line = run.error_line()
    assert "nope.onnx" in line and "does not exist" in line and "--unitalker-model" in line


def test_unknown_phone_in_timings(capsys, tmp_path: Path) -> None:
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"phones": [[0.0, 0.2, "SIL"], [0.2, 0.4, "QQ"]]}))
    run = run_cli(capsys, "phonemes", "--timings", str(timings), "-o", str(tmp_path / "o.npz"))
    line = run.error_line()
    assert run.rc == 2
    assert "unknown phone 'QQ'" in line and "phones[1]" in line and "'AA'" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"phones": [[0, 0.2, "AA"]', "not valid JSON"),
        ('{"phone": []}', 'no "phones" list'),
        ('{"phones": [[0, "soon", "AA"]]}', "non-numeric times"),
        ('{"phones": [["AA"]]}', "expected [start_s, end_s"),
    ],
)
def test_bad_timings_files(capsys, tmp_path: Path, text: str, expected: str) -> None:
    timings = tmp_path / "t.json"
    timings.write_text(text)
    line = run_cli(
        capsys, "phonemes", "--timings", str(timings), "-o", str(tmp_path / "o.npz")
    ).error_line()
    assert expected in line and "t.json" in line


def test_invalid_settings_are_one_line(capsys, monkeypatch) -> None:
    monkeypatch.setenv("AUDIO2FACE_PORT", "eighty")
    line = run_cli(capsys, "models").error_line()
    assert "invalid settings" in line and "port" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(capsys, tmp_path: Path, where: str) -> None:
    timings = tmp_path / "t.json"
    timings.write_text("{")
    argv = ["phonemes", "--timings", str(timings), "-o", str(tmp_path / "o.npz")]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    run = run_cli(capsys, *argv)
    assert run.rc == 2
    assert "Traceback (most recent call last)" in run.err
    assert run.err.strip().splitlines()[-1].startswith("audio2face: error: --timings")


def test_phonemes_text_without_espeak(capsys, monkeypatch, tmp_path: Path) -> None:
    from audio2face.engines.phonemes import espeak

    def unavailable(*_: object) -> None:
        raise espeak.EspeakUnavailableError("libespeak-ng.so.1 not found")

    monkeypatch.setattr(espeak, "synthesize", unavailable)
    run = run_cli(capsys, "phonemes", "--text", "hello", "-o", str(tmp_path / "o.npz"))
    line = run.error_line()
    assert run.rc == 2 and "espeak-ng" in line and "--timings" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["convert", "in.wav"], "required: -o/--output"),
        (["serve", "--port", "abc"], "invalid int value: 'abc'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_usage_errors_are_one_line_with_a_pointer_to_help(
    capsys, argv: list[str], expected: str
) -> None:
    from audio2face.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err and "--help`" in err


def test_errors_that_reach_the_cli_directly_are_described() -> None:
    """The v1 client wraps websockets' errors; anything that gets past it (another client
    path, a library bug) still ends as one line saying what to check."""
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus, InvalidURI
    from websockets.http11 import Response

    from audio2face.cli import describe

    status = InvalidStatus(Response(403, "Forbidden", Headers()))
    cases = [
        (InvalidURI("wss//x", "no scheme"), "not a WebSocket URL"),
        (status, "handshake failed"),
        (ConnectionRefusedError(111, "Connection refused"), "is the server running"),
        (FileNotFoundError(2, "No such file or directory", "x.json"), "x.json: No such file"),
        (KeyError("boom"), "unexpected KeyError"),
    ]
    for exc, expected in cases:
        message, rc = describe(exc)
        assert expected in message and "\n" not in message and rc in (1, 2), (exc, message)
    assert "--debug" in describe(KeyError("boom"))[0]
