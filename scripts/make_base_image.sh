#!/usr/bin/env bash
# Make a Debian 12 base image for docker/Dockerfile from Debian's packages only (no
# Docker Hub): mmdebstrap writes a root filesystem tarball with Python 3.11 and the
# libraries the service needs, and podman imports it as an image.
#
#   scripts/make_base_image.sh [IMAGE]       # default: localhost/audio2face-base:bookworm
#
# Needs root (or a working user namespace), mmdebstrap and podman
# (apt-get install mmdebstrap podman). MIRROR overrides the Debian mirror.
set -euo pipefail
IMAGE=${1:-localhost/audio2face-base:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PODMAN=(podman ${A2F_STORAGE_DRIVER:+--storage-driver "$A2F_STORAGE_DRIVER"})

for tool in mmdebstrap podman; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; apt-get install $tool" >&2; exit 2; }
done
work=$(mktemp -d /var/tmp/a2f-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# minbase + the merged-usr hook: no usrmerge package, which would pull in all of perl.
# Only the runtime libraries: python3.11-venv makes the venv in the build stage,
# libsndfile1 is soundfile's, libespeak-ng1 the phonemes engine's. Docs, man pages
# and translations are left out (about 30 MB).
mmdebstrap --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=python3.11,python3.11-venv,libsndfile1,libespeak-ng1 \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    bookworm "$work/rootfs.tar" "$MIRROR"

"${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "$IMAGE: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
