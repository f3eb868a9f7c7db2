"""Shared fixtures. Other test areas append their own below; keep each one documented.

Test modules take fixtures from here by name; they never import them (an imported
fixture needs a ``# noqa: F811`` at every use).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

SEED_CONFIGS_ENV = "AUDIO2FACE_SEED_CONFIGS"


def seed_configs_dir() -> Path | None:
    """The original service's data files (``../shared/seed-configs``), read in place:
    the folder ``$AUDIO2FACE_SEED_CONFIGS`` names (``.ci/run`` sets it when the folder
    exists); None when it is unset or not a folder."""
    value = os.environ.get(SEED_CONFIGS_ENV, "")
    path = Path(value).expanduser() if value else None
    return path if path is not None and path.is_dir() else None


def seed_configs_skip_reason() -> str:
    """One line saying why the compatibility tests cannot run here."""
    value = os.environ.get(SEED_CONFIGS_ENV, "")
    if not value:
        return f"{SEED_CONFIGS_ENV} is not set (point it at the original's seed-configs folder)"
    return f"{SEED_CONFIGS_ENV}={value} is not a folder"


@pytest.fixture(scope="session")
def seed_configs() -> Path:
    """The seed-configs folder; skips the test (with the reason) when there is none."""
    path = seed_configs_dir()
    if path is None:
        pytest.skip(seed_configs_skip_reason())
    return path


# --- UniTalker-signature ONNX model -------------------------------------------------


def build_tiny_unitalker(*, dynamic_batch: bool = False, seed: int = 0) -> bytes:
    """A tiny ONNX model with UniTalker's exact signature, built with ``onnx.helper``.

    Inputs ``audio`` float32 ``[1, N]`` (``[B, N]`` with ``dynamic_batch``), ``emo_id``
    int32 ``[1]``, ``time_steps`` int32 ``[1]``; output float32 ``[1, time_steps, 51]``.
    Graph: mean, mean-abs and mean-square of the audio over 10 ms pools, resampled
    linearly to ``time_steps`` frames, a 3->51 projection plus ``0.01 * emo_id * v``,
    then a sigmoid. Frame ``k`` depends on the audio around ``k / 30`` s of the segment.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.0, (3, 51)).astype(np.float32)
    b = rng.normal(0.0, 0.3, (51,)).astype(np.float32)
    v = rng.normal(0.0, 1.0, (51,)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(v * 0.01, "V"),
        numpy_helper.from_array(np.array([0, 0, 0, 160], dtype=np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes12"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "i0"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "i1"),
        numpy_helper.from_array(np.array([3, 1], dtype=np.int64), "c31"),
    ]
    nodes = [
        helper.make_node("Pad", ["audio", "pads"], ["x"]),  # so a 1-sample input still pools
        helper.make_node("Abs", ["x"], ["ax"]),
        helper.make_node("Mul", ["x", "x"], ["sx"]),
        helper.make_node("Unsqueeze", ["x", "axes12"], ["x4"]),  # [B, 1, 1, N]
        helper.make_node("Unsqueeze", ["ax", "axes12"], ["ax4"]),
        helper.make_node("Unsqueeze", ["sx", "axes12"], ["sx4"]),
        helper.make_node("Concat", ["x4", "ax4", "sx4"], ["f"], axis=1),  # [B, 3, 1, N]
        helper.make_node("AveragePool", ["f"], ["p"], kernel_shape=[1, 160], strides=[1, 80]),
        # sizes = [B, 3, 1, time_steps]
        helper.make_node("Shape", ["p"], ["pshape"]),
        helper.make_node("Slice", ["pshape", "i0", "i1"], ["bdim"]),
        helper.make_node("Cast", ["time_steps"], ["t64"], to=TensorProto.INT64),
        helper.make_node("Concat", ["bdim", "c31", "t64"], ["sizes"], axis=0),
        helper.make_node("Resize", ["p", "", "", "sizes"], ["r"], mode="linear"),
        helper.make_node("Squeeze", ["r", "axes12_sq"], ["r3"]),  # [B, 3, T]
        helper.make_node("Transpose", ["r3"], ["rt"], perm=[0, 2, 1]),  # [B, T, 3]
        helper.make_node("MatMul", ["rt", "W"], ["m"]),
        helper.make_node("Add", ["m", "B"], ["mb"]),
        helper.make_node("Cast", ["emo_id"], ["emo_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["emo_f", "V"], ["ev"]),
        helper.make_node("Add", ["mb", "ev"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["output"]),
    ]
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "axes12_sq"))
    batch: str | int = "batch" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes,
        "tiny_unitalker",
        [
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, "n_samples"]),
            helper.make_tensor_value_info("emo_id", TensorProto.INT32, [1]),
            helper.make_tensor_value_info("time_steps", TensorProto.INT32, [1]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, "time_steps", 51])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def tiny_unitalker_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a tiny UniTalker-signature model (batch fixed at 1, as the real one)."""
    pytest.importorskip("onnx")
    path = tmp_path_factory.mktemp("models") / "tiny_unitalker.onnx"
    path.write_bytes(build_tiny_unitalker())
    return path


@pytest.fixture(scope="session")
def tiny_unitalker_batch_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same graph with a dynamic batch dimension, to exercise batched inference."""
    pytest.importorskip("onnx")
    path = tmp_path_factory.mktemp("models") / "tiny_unitalker_batch.onnx"
    path.write_bytes(build_tiny_unitalker(dynamic_batch=True))
    return path


@pytest.fixture(scope="session")
def unitalker_names() -> tuple[str, ...]:
    """The 51 UniTalker channel names: the package rig when present, else the original
    service's list from the seed configs (read in place, never copied into the repo)."""
    from audio2face.rigs import available_rigs, load_rig

    if "unitalker51" in available_rigs():
        return load_rig("unitalker51")
    root = seed_configs_dir()
    path = root / "unitalker_output_names.json" if root else None
    if path is None or not path.is_file():
        pytest.skip(f"no unitalker51 rig, and {seed_configs_skip_reason()}")
    return tuple(json.loads(path.read_text(encoding="utf-8")))


# --- a fast numpy SegmentModel for scheduler tests -----------------------------------


class ToyConvModel:
    """A :class:`~audio2face.types.SegmentModel` in numpy, cheap enough for hypothesis.

    Frame ``k`` is a zero-padded conv over the RMS envelope around ``k / fps``, minus the
    segment's mean envelope: like a real model, the same instant comes out differently
    depending on the segment's extent (edges, global statistics). Records every call.
    """

    output_names = ("a", "b", "c", "d")
    sample_rate = 16_000
    fps = 30.0

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (n_samples, n_frames)
        self._kernels = np.array(
            [
                [0.2, 0.2, 0.2, 0.2, 0.2],
                [0.0, 0.25, 0.5, 0.25, 0.0],
                [0.1, 0.2, 0.4, 0.2, 0.1],
                [0.5, 0.3, 0.2, 0.0, 0.0],
            ],
            dtype=np.float64,
        )

    def infer(self, audio: np.ndarray, n_frames: int, emotion: str | None = None) -> np.ndarray:
        self.calls.append((int(audio.shape[0]), n_frames))
        if n_frames == 0:
            return np.zeros((0, 4), dtype=np.float32)
        x = np.asarray(audio, dtype=np.float64)
        hop = self.sample_rate / self.fps
        centres = (np.arange(n_frames) + 0.5) * hop
        idx = np.clip(centres.astype(int), 0, max(len(x) - 1, 0))
        csum = np.concatenate([[0.0], np.cumsum(x**2)])
        lo = np.clip(idx - 160, 0, len(x))
        hi = np.clip(idx + 160, 0, len(x))
        env = np.sqrt((csum[hi] - csum[lo]) / np.maximum(hi - lo, 1))
        env = env - env.mean()
        # "full" then the centre: mode="same" would return max(len) rows for short inputs
        out = np.stack(
            [np.convolve(env, k, mode="full")[2 : 2 + n_frames] for k in self._kernels], axis=1
        )
        return out.astype(np.float32)

    def infer_batch(self, audios, n_frames: int, emotion: str | None = None) -> np.ndarray:
        return np.stack([self.infer(a, n_frames, emotion) for a in audios]).reshape(
            len(audios), n_frames, 4
        )


@pytest.fixture
def toy_model() -> ToyConvModel:
    """A fresh :class:`ToyConvModel` (4 channels, 16 kHz, 30 fps)."""
    return ToyConvModel()


# --- a real uvicorn server on loopback ----------------------------------------------


class LiveServer:
    """A uvicorn server in a background thread on a free loopback port."""

    def __init__(self, app, host: str = "127.0.0.1", *, guarded: bool = False) -> None:
        """``guarded``: behind the TCP-edge guards the real ``serve`` installs
        (``server/admission.py``): header timeouts, the connection cap, the
        per-connection write-buffer bound, the 1009 reason and the linger after it."""
        import socket
        import threading

        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        settings = app.state.a2f.settings
        protocols: dict[str, object] = {}
        if guarded:
            from audio2face.server.admission import connection_cap, guarded_protocols

            http, ws, app.state.a2f.guard = guarded_protocols(
                settings, connection_cap(settings, 1 << 16)
            )
            protocols = {"http": http, "ws": ws}
        config = uvicorn.Config(
            app, log_config=None, ws_max_size=settings.max_message_bytes, lifespan="on",
            **protocols,  # type: ignore[arg-type]  # the protocol classes uvicorn takes
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/streaming_audio2face/ws"

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def unitalker_settings(tiny_unitalker_path: Path):
    """Settings serving the tiny UniTalker-signature model as the default profile."""
    from audio2face.settings import Settings

    return Settings(
        unitalker_model=tiny_unitalker_path,
        default_profile="unitalker",
        window_left_context_s=0.3,
        window_hop_s=0.2,
        window_lookahead_s=0.1,
    )


@pytest.fixture(scope="session")
def unitalker_server(unitalker_settings):
    """A live server whose only engine is the tiny UniTalker-signature test model."""
    from audio2face.loading import load_unitalker_engine
    from audio2face.server import create_app

    engines = {"unitalker": load_unitalker_engine(unitalker_settings)}
    with LiveServer(create_app(unitalker_settings, engines=engines)) as server:
        yield server


# --- a server on the tiny model whose output is a pure function of its audio --------


def steady_profile_dir(root: Path) -> Path:
    """A profile folder with ``steady``: UniTalker channels to ARKit, no random steps
    (no blink), so a stream's output can be compared bit for bit with a run alone."""
    from audio2face.profiles.registry import BUILTIN_DIR

    root.mkdir(parents=True, exist_ok=True)
    mapping = (BUILTIN_DIR / "data" / "unitalker_to_arkit.json").as_posix()
    (root / "steady.toml").write_text(
        'name = "steady"\nengine = "unitalker"\ninput_rig = "unitalker51"\nrig = "arkit52"\n'
        'dtype = "float32"\n\n[[steps]]\ntype = "unitalker_clip"\n\n'
        f'[[steps]]\ntype = "rename"\nmap = "{mapping}"\n',
        encoding="utf-8",
    )
    return root


def hardening_settings(model: Path, profiles: Path, **overrides: object):
    """Settings serving ``model`` through the ``steady`` profile in ``profiles``."""
    from audio2face.settings import Settings

    values: dict[str, object] = {
        "unitalker_model": model,
        "default_profile": "steady",
        "profile_dir": profiles,
        "window_left_context_s": 0.3,
        "window_hop_s": 0.2,
        "window_lookahead_s": 0.1,
        "inference_workers": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]  # pydantic validates the values


def start_server(settings, engines: dict | None = None, *, guarded: bool = False) -> LiveServer:
    """A :class:`LiveServer` for ``settings`` (UniTalker from ``settings`` unless
    ``engines`` are given); use it as a context manager."""
    from audio2face.loading import load_unitalker_engine
    from audio2face.server import create_app

    if engines is None:
        engines = {"unitalker": load_unitalker_engine(settings)}
    return LiveServer(create_app(settings, engines=engines), guarded=guarded)


@pytest.fixture(scope="module")
def hard_server(tiny_unitalker_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A live server on the ``steady`` profile with default limits, behind the guards
    the real ``serve`` installs."""
    profiles = steady_profile_dir(tmp_path_factory.mktemp("profiles"))
    settings = hardening_settings(tiny_unitalker_path, profiles)
    with start_server(settings, guarded=True) as server:
        yield server
