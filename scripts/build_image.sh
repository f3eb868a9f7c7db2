#!/usr/bin/env bash
# Build the audio2face image with podman (daemonless; no Docker needed).
#
#   scripts/build_image.sh                 # CPU image audio2face:latest from the Debian base
#   scripts/build_image.sh --cuda          # docker/Dockerfile.cuda -> audio2face:cuda
#   BASE_IMAGE=python:3.11-slim scripts/build_image.sh   # where Docker Hub is reachable
#
# The default base, localhost/audio2face-base:bookworm, is made from Debian's packages
# by scripts/make_base_image.sh (run here when it is missing). Only pyproject.toml,
# README.md and src/ are sent to the build (a staged context: no .venv, no data).
# A2F_STORAGE_DRIVER=vfs uses podman's vfs storage where overlay is not available.
set -euo pipefail
cd "$(dirname "$0")/.."
PODMAN=(podman ${A2F_STORAGE_DRIVER:+--storage-driver "$A2F_STORAGE_DRIVER"})
command -v podman >/dev/null || { echo "podman not found (apt-get install podman)" >&2; exit 2; }

if [ "${1:-}" = "--cuda" ]; then
    FILE=docker/Dockerfile.cuda
    IMAGE=${IMAGE:-localhost/audio2face:cuda}
    BASE=${BASE_IMAGE:-nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04}
else
    FILE=docker/Dockerfile
    IMAGE=${IMAGE:-localhost/audio2face:latest}
    BASE=${BASE_IMAGE:-localhost/audio2face-base:bookworm}
    if [ "$BASE" = localhost/audio2face-base:bookworm ] && ! "${PODMAN[@]}" image exists "$BASE"; then
        scripts/make_base_image.sh "$BASE"
    fi
fi

old_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp -r pyproject.toml README.md src "$context"/
find "$context" -name '__pycache__' -prune -exec rm -rf {} +

# A CA bundle the host's pip trusts (a proxy's own CA) is lent to the build stage, read-only.
extra=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    extra+=(--volume "$PIP_CERT:/run/a2f-build-ca.crt:ro" --build-arg PIP_CERT=/run/a2f-build-ca.crt)
fi
[ -n "${PIP_INDEX_URL:-}" ] && extra+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")

# --network host: pip in the build stage reaches the package index the host reaches.
# --isolation chroot: RUN steps need no OCI runtime or cgroups (works in sandboxes).
# --format docker: keeps HEALTHCHECK and STOPSIGNAL (the OCI format drops HEALTHCHECK).
"${PODMAN[@]}" build --network host --isolation chroot --format docker --pull=missing \
    "${extra[@]}" --build-arg "BASE_IMAGE=$BASE" -f "$FILE" -t "$IMAGE" "$context"
# The image this tag named before is now untagged: remove it (only it), so rebuilds
# do not pile up 350 MB each. One still used by a container stays.
new_id=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    "${PODMAN[@]}" rmi "$old_id" >/dev/null 2>&1 || true
fi
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
echo "$IMAGE: $((size / 1000000)) MB"
