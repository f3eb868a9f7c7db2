# shellcheck shell=bash
# Sourced by the image scripts: sets PODMAN (an array) to a podman command line that
# can run containers on this machine, or returns 2 after one line saying why not.
#
# Plain `podman` on a normal Linux host. Two sandboxes seen here need help:
# * cgroups in "hybrid" mode (v1 controllers plus a v2 mount), which crun refuses:
#   runc with the cgroupfs manager works;
# * no CAP_SYS_RESOURCE, so the OCI runtime cannot set the rlimits podman always
#   asks for: scripts/oci-runtime-norlimit (runc minus the rlimits; the container
#   inherits podman's own) stands in for the runtime.
# A2F_STORAGE_DRIVER=vfs picks podman's vfs storage where overlay does not mount.
# Nothing here changes the machine's podman configuration.

_a2f_probe_image=${A2F_PROBE_IMAGE:-localhost/audio2face-base:bookworm}
_a2f_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PODMAN=(podman ${A2F_STORAGE_DRIVER:+--storage-driver "$A2F_STORAGE_DRIVER"})

if ! command -v podman >/dev/null 2>&1; then
    echo "podman not found (apt-get install podman)" >&2
    return 2
fi

a2f_podman_works() {
    "$@" run --rm --network none "$_a2f_probe_image" /bin/true >/dev/null 2>&1
}

if "${PODMAN[@]}" image exists "$_a2f_probe_image" && ! a2f_podman_works "${PODMAN[@]}"; then
    if command -v runc >/dev/null 2>&1 && \
        a2f_podman_works "${PODMAN[@]}" --runtime "$_a2f_dir/oci-runtime-norlimit" \
            --cgroup-manager cgroupfs; then
        PODMAN+=(--runtime "$_a2f_dir/oci-runtime-norlimit" --cgroup-manager cgroupfs)
    else
        why=$("${PODMAN[@]}" run --rm --network none "$_a2f_probe_image" /bin/true 2>&1 | tail -1)
        echo "podman cannot run containers here: $why" >&2
        return 2
    fi
fi
