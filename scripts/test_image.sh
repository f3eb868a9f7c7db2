#!/usr/bin/env bash
# Build the CPU image and test it as a user would run it:
#   * it becomes ready (GET /ready) with the original's weights/ mount;
#   * one file streamed over protocol v1 (`audio2face stream`) gives round(s * 30) frames,
#     with the default profile and with the original's `unitalker` profile;
#   * the server runs as a non-root user on a read-only root filesystem;
#   * SIGTERM mid-stream drains: the open stream finishes whole, /ready turns 503,
#     the container exits 0;
#   * the image fits its size budget (A2F_IMAGE_BUDGET_MB, 600).
#
#   scripts/test_image.sh            # build, then test (needs podman, mmdebstrap, runc)
#   scripts/test_image.sh --no-build # test the image already built
#   scripts/test_image.sh --ci       # as .ci/run: one line and exit 0 when this machine
#                                    # cannot build or run images
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
CI=0
for arg in "$@"; do
    case $arg in
        --no-build) BUILD=0 ;;
        --ci) CI=1 ;;
        *) echo "unknown option $arg; known: --no-build --ci" >&2; exit 2 ;;
    esac
done
IMAGE=${IMAGE:-localhost/audio2face:latest}
BUDGET_MB=${A2F_IMAGE_BUDGET_MB:-600}
PY=${PYTHON:-.venv/bin/python}
A2F=$(dirname "$PY")/audio2face

skip() {
    if [ "$CI" = 1 ]; then
        echo "image test skipped: $1"
        exit 0
    fi
    echo "error: $1" >&2
    exit 2
}
[ -x "$A2F" ] || skip "$A2F not found (pip install -e '.[dev]' first)"
for tool in podman mmdebstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (apt-get install podman mmdebstrap runc)"
done
[ "$(id -u)" = 0 ] || skip "building the base with mmdebstrap needs root here"

if [ "$BUILD" = 1 ]; then
    # The base is built first so podman_env.sh can probe with it. The build's output
    # is shown only when it fails.
    buildlog=$(mktemp)
    if ! scripts/build_image.sh >"$buildlog" 2>&1; then
        tail -40 "$buildlog" >&2
        rm -f "$buildlog"
        echo "FAIL: the image did not build (scripts/build_image.sh)" >&2
        exit 1
    fi
    tail -1 "$buildlog"
    rm -f "$buildlog"
fi
# shellcheck source=scripts/podman_env.sh
source scripts/podman_env.sh 2>/tmp/a2f-podman-why.$$ || skip "$(cat /tmp/a2f-podman-why.$$)"
rm -f /tmp/a2f-podman-why.$$
"${PODMAN[@]}" image exists "$IMAGE" || skip "$IMAGE is not built (run without --no-build)"

fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
name=a2f-image-test-$$
cleanup() {
    "${PODMAN[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

size_mb=$(( $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))
echo "image $IMAGE: $size_mb MB (budget $BUDGET_MB MB)"
[ "$size_mb" -le "$BUDGET_MB" ] || fail "image is $size_mb MB, over the $BUDGET_MB MB budget"

# Test audio (16 kHz voiced bursts), a weights/ folder as the original's users mount it
# (the tiny UniTalker stand-in of the tests, under the original's file name), a port.
mkdir -p "$work/weights"
"$PY" - "$work" <<'PY'
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

work = Path(sys.argv[1])
rate = 16000
for name, seconds in (("speech.wav", 3.0), ("long.wav", 8.0)):
    t = np.arange(int(rate * seconds)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)
    sf.write(work / name, audio.astype(np.float32), rate)
sys.path.insert(0, "tests")
from conftest import build_tiny_unitalker  # noqa: E402

(work / "weights" / "unitalker_v0.4.0_base.onnx").write_bytes(build_tiny_unitalker())
PY
chmod -R a+rX "$work"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=ws://127.0.0.1:$port/api/v1/streaming_audio2face/ws

# As documented: -p 18083 and the weights mount; plus a read-only root filesystem
# (podman puts tmpfs on /tmp and /run) and a drain long enough to see.
# --no-healthcheck: podman runs HEALTHCHECK from systemd timers, absent here; this
# script checks /ready itself.
"${PODMAN[@]}" run -d --name "$name" --read-only --no-healthcheck \
    -p "127.0.0.1:$port:18083" \
    -v "$work/weights:/workspace/audio2face/weights:ro" \
    -e AUDIO2FACE_SHUTDOWN_DRAIN_S=30 \
    "$IMAGE" >/dev/null

ready=""
for _ in $(seq 1 240); do
    ready=$(curl -s --max-time 2 "http://127.0.0.1:$port/ready" || true)
    case $ready in *'"ready":true'*) break ;; esac
    [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$name")" = true ] || {
        "${PODMAN[@]}" logs "$name" | tail -20 >&2; fail "the container exited during startup"; }
    sleep 0.5
done
case $ready in *'"ready":true'*) ;; *) "${PODMAN[@]}" logs "$name" | tail -20 >&2; fail "not ready in 120 s" ;; esac
echo "ready: $ready"
case $ready in *unitalker*) ;; *) fail "the weights/ mount did not enable the unitalker engine: $ready" ;; esac

# shellcheck disable=SC2016  # $2 is awk's, inside the container
uid=$("${PODMAN[@]}" exec "$name" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status')
[ "$uid" != 0 ] || fail "the server runs as root"
[ "$("${PODMAN[@]}" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] \
    || fail "the root filesystem is not read-only"
# The working directory belongs to the server's user: only a read-only root stops this.
if "${PODMAN[@]}" exec "$name" sh -c 'touch /workspace/audio2face/probe' 2>/dev/null; then
    fail "could write to /workspace/audio2face: the root filesystem is writable"
fi
echo "server uid $uid, read-only root filesystem"

frames_of() {  # frames in an .npz written by `audio2face stream`
    "$PY" -c 'import numpy as np, sys; print(np.load(sys.argv[1])["values"].shape[0])' "$1"
}
"$A2F" stream "$work/speech.wav" --url "$url" -o "$work/out.npz" -q >/dev/null
[ "$(frames_of "$work/out.npz")" = 90 ] || fail "3 s streamed gave $(frames_of "$work/out.npz") frames, not 90"
"$A2F" stream "$work/speech.wav" --url "$url" --profile unitalker -o "$work/ut.npz" -q >/dev/null
[ "$(frames_of "$work/ut.npz")" = 90 ] || fail "unitalker profile: $(frames_of "$work/ut.npz") frames, not 90"
echo "streamed 3 s over v1: 90 frames (arkit and unitalker profiles)"

# Drain: an 8 s utterance paced in real time; SIGTERM 2 s in.
"$A2F" stream "$work/long.wav" --url "$url" --pace -o "$work/drain.npz" -q >/dev/null 2>"$work/drain.err" &
client=$!
sleep 2
t0=$(date +%s)
"${PODMAN[@]}" kill --signal TERM "$name" >/dev/null
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/ready" || true)
[ "$code" = 503 ] || fail "/ready answered $code while draining, not 503"
wait "$client" || fail "the stream was cut by SIGTERM: $(cat "$work/drain.err")"
[ "$(frames_of "$work/drain.npz")" = 240 ] || fail "drained stream gave $(frames_of "$work/drain.npz") frames, not 240"
status=$("${PODMAN[@]}" wait "$name")
t1=$(date +%s)
[ "$status" = 0 ] || fail "the container exited with $status after SIGTERM"
[ $((t1 - t0)) -lt 30 ] || fail "the drain took $((t1 - t0)) s: it waited for its deadline, not for the stream"
echo "SIGTERM mid-stream: /ready 503, the stream finished whole (240 frames), exit 0 after $((t1 - t0)) s"

# As the Kubernetes manifests run it: two workers, metrics shared through /tmp. Every
# scrape, whichever worker answers, must count the frames of all 4 streams.
"${PODMAN[@]}" rm -f "$name" >/dev/null
"${PODMAN[@]}" run -d --name "$name" --read-only --no-healthcheck -p "127.0.0.1:$port:18083" \
    -e AUDIO2FACE_WORKERS=2 -e PROMETHEUS_MULTIPROC_DIR=/tmp "$IMAGE" >/dev/null
for _ in $(seq 1 240); do
    case $(curl -s --max-time 2 "http://127.0.0.1:$port/ready" || true) in *'"ready":true'*) break ;; esac
    sleep 0.5
done
for i in 1 2 3 4; do
    "$A2F" stream "$work/speech.wav" --url "$url" -o "$work/w$i.npz" -q >/dev/null &
done
wait
for _ in 1 2 3 4 5 6; do
    total=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^a2f_frames_out_total / {print int($2)}')
    [ "$total" = 360 ] || fail "/metrics of a 2-worker container counted $total frames, not 360"
done
echo "two workers: every /metrics scrape counts all 360 frames"
echo "image test passed"
