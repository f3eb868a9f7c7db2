"""Prometheus metrics, one registry per app so several apps (tests) never clash.

**Several worker processes** (``serve --workers N``) each count their own streams, and
a scrape of ``/metrics`` reaches whichever worker the kernel hands the connection to.
To give one view, the metrics use prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` names a folder in the environment *before the process
starts*: every process writes its values to memory-mapped files there, and
``/metrics`` in any worker reads all of them (counters and histograms summed; the
active-streams and queue-depth gauges summed over live processes; limits: the
largest). :func:`shared_metrics_dir` makes such a folder and sets the variable for
as long as the parent of the workers runs (it enters it before it spawns them), and
:func:`process_exited` forgets a worker that died. Without the variable nothing changes:
each :class:`Metrics` keeps its values in its own registry in memory.

In multiprocess mode all :class:`Metrics` objects of one process share their values
(they are keyed by metric name and process id), so it is for servers, not for tests
that build several apps in one process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from audio2face.errors import ConfigError

if TYPE_CHECKING:
    from audio2face.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own switch for multiprocess mode (read once, at its import)."""

LIMIT_SETTINGS = (
    "max_streams",
    "max_message_bytes",
    "max_buffered_s",
    "max_utterance_s",
    "idle_timeout_s",
    "send_timeout_s",
    "shutdown_drain_s",
)
"""The settings exported as ``a2f_limit``."""

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)
_INFER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """The folder of multiprocess mode, or None when each process keeps its own values.

    Raises :class:`ConfigError` when the variable is set but unusable, or was set after
    prometheus-client was imported (its values would then stay in this process only,
    and ``/metrics`` would silently miss them)."""
    raw = os.environ.get(MULTIPROC_ENV, "")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise ConfigError(
            f"{MULTIPROC_ENV}={raw} is not a writable folder; create it (empty) before "
            "starting the service, or unset it to keep metrics per process"
        )
    if prometheus_values.ValueClass is prometheus_values.MutexValue:
        raise ConfigError(
            f"{MULTIPROC_ENV} was set after prometheus_client was imported, so this "
            "process cannot share its metrics; set it in the environment before start"
        )
    return path


def prepare_multiprocess_dir(path: Path | None = None) -> Path:
    """Make ``path`` (default: a new temporary folder) the metrics folder of the worker
    processes about to be started: create it, remove files an earlier run left there
    (their process ids may be reused) and export ``PROMETHEUS_MULTIPROC_DIR``, which
    spawned children inherit. Call it in the parent, before it starts the workers."""
    if path is None:
        configured = os.environ.get(MULTIPROC_ENV, "")
        path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="a2f-metrics-"))
    try:
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot prepare the metrics folder {path}: {exc.strerror or exc}; "
            f"point {MULTIPROC_ENV} at a writable folder (a tmpfs such as /tmp)"
        ) from exc
    os.environ[MULTIPROC_ENV] = str(path)
    return path


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[Path]:
    """:func:`prepare_multiprocess_dir` for the duration of a multi-worker server: the
    folder is the operator's ``PROMETHEUS_MULTIPROC_DIR`` (emptied) or a new temporary
    one, removed afterwards; the variable is restored on exit."""
    before = os.environ.get(MULTIPROC_ENV)
    path = prepare_multiprocess_dir()
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def process_exited(pid: int) -> None:
    """Forget the live gauges (active streams, queue depth) of a worker that exited, so
    its last values stop counting; its counters stay, as totals must not go back."""
    raw = os.environ.get(MULTIPROC_ENV, "")
    if raw:
        mark_process_dead(pid, raw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _LiveCollector(MultiProcessCollector):
    """Reads every process's files; first drops the live gauges of processes that are
    gone (a worker killed with SIGKILL never says so), so a dead worker's open streams
    are not counted as open. Its parent may also call :func:`process_exited`."""

    def __init__(self, registry: CollectorRegistry, path: Path) -> None:
        self._dir = path
        super().__init__(registry, path=str(path))

    def collect(self) -> Iterable[Metric]:
        for entry in self._dir.glob("gauge_live*.db"):
            match = _LIVE_FILE.match(entry.name)
            if match and not _alive(int(match.group(1))):
                mark_process_dead(int(match.group(1)), str(self._dir))
        return super().collect()


@dataclass
class Metrics:
    """Every metric the service exports on ``/metrics`` (``registry``)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        shared = multiprocess_dir()
        # Multiprocess mode: the values live in files, not in a registry; the exported
        # registry holds one collector that reads the files of every process.
        r = self.registry if shared is None else None
        self.active_streams = Gauge(
            "a2f_active_streams", "Streams open now", registry=r, multiprocess_mode="livesum"
        )
        self.streams = Counter("a2f_streams", "Streams ended, by outcome", ["outcome"], registry=r)
        self.frames_out = Counter("a2f_frames_out", "Frames sent to clients", registry=r)
        self.audio_seconds_in = Counter(
            "a2f_audio_seconds_in", "Seconds of audio received", registry=r
        )
        self.frame_latency = Histogram(
            "a2f_frame_latency_seconds",
            "Time from the arrival of the audio that completes a frame's look-ahead "
            "to the frame being sent",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "a2f_inference_seconds",
            "Wall time of one engine call",
            ["engine"],
            buckets=_INFER_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "a2f_batch_size",
            "Rows per model run (one row: one stream's request)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.queue_depth = Gauge(
            "a2f_queue_depth",
            "Bodies waiting for inference, all streams",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.errors = Counter("a2f_errors", "Errors, by kind", ["kind"], registry=r)
        self.refusals = Counter(
            "a2f_refusals", "Requests refused, by the limit hit", ["limit"], registry=r
        )
        self.limit = Gauge(
            "a2f_limit", "Configured limits", ["name"], registry=r, multiprocess_mode="livemax"
        )
        if shared is not None:
            # A restarted worker can get the process id of one that died, and its files
            # still hold that one's values: open streams and queued bodies start at 0.
            self.active_streams.set(0)
            self.queue_depth.set(0)
            _LiveCollector(self.registry, shared)

    def record_limits(self, settings: Settings) -> None:
        """Export every configured limit as ``a2f_limit{name=...}``, so dashboards can
        draw usage against its cap."""
        for name in LIMIT_SETTINGS:
            self.limit.labels(name=name).set(float(getattr(settings, name)))
