"""The contract every postprocess step follows, and helpers shared by the steps.

A step is built from validated options (a pydantic model) and *bound* to the names
of its input channels, which fixes its output names. After that it is immutable and
shared by every stream; whatever it must remember between chunks (blink schedule,
filter memory, random generator) lives in the per-stream ``state`` object it creates
with :meth:`Step.new_state` and receives in its :class:`StepContext`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from audio2face.errors import ConfigError
from audio2face.types import FloatArray

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody
    from audio2face.postprocess.batch import Batch
    from audio2face.postprocess.emotion_keys import EmotionTrack

__all__ = [
    "DEFAULT_STREAM_OPTIONS",
    "FEATURES",
    "BindEnv",
    "FeatureStep",
    "GazeMode",
    "StreamOptions",
    "Step",
    "StepContext",
    "StatelessStep",
    "StepOptions",
    "as_float32",
    "base_emotion",
    "channel_indices",
    "load_json_path",
    "load_named_json",
]

_INTENSITY_SUFFIX = re.compile(r"_\d+$")


class StepOptions(BaseModel):
    """Base of every step's options: immutable, unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class BindEnv:
    """What a step may know when it is bound: the profile's frame rate and the folder
    that relative data paths in the profile are resolved against."""

    fps: float = 30.0
    base_dir: Path | None = None


GazeMode = Literal["idle", "camera", "off"]

FEATURES: tuple[str, ...] = ("head", "gaze", "blinks", "tongue", "arousal", "emotion")
"""Names of the switchable "alive" features; each step of these kinds names its
feature in ``Step.feature`` and a stream can switch it off (:class:`StreamOptions`)."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Per-stream switches over the profile's steps.

    ``off``: features (see :data:`FEATURES`) whose steps pass frames through
    unchanged for this stream (head channels stay at 0, the neutral pose).
    ``gaze``: overrides the gaze step's ``mode`` for this stream.
    """

    off: frozenset[str] = frozenset()
    gaze: GazeMode | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.off) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; features are {list(FEATURES)}")
        if self.gaze not in (None, "idle", "camera", "off"):
            raise ValueError(f"unknown gaze mode {self.gaze!r}; modes are idle, camera, off")

    @classmethod
    def all_off(cls) -> StreamOptions:
        """Only the lips: every alive feature switched off."""
        return cls(off=frozenset(FEATURES))


DEFAULT_STREAM_OPTIONS = StreamOptions()


@dataclass(slots=True)
class StepContext:
    """Per-stream, per-step view handed to :meth:`Step.__call__`.

    ``frame_index`` is the stream frame number of ``frames[0]``; ``emotion`` is the
    chunk's emotion (``None`` = neutral, already validated by the chain); ``state``
    is what :meth:`Step.new_state` returned for this stream (the step may mutate it).
    ``prosody`` holds the voice features of exactly these frames, or ``None`` when
    the caller has no audio (steps then fall back to a deterministic idle behaviour).
    ``options`` are the stream's switches; ``shared`` is one dict per stream that
    steps use to pass events on (the gaze step's saccades to the blink step);
    ``emotion_track`` holds the stream's timed emotion keys, if any were given.
    """

    frame_index: int
    emotion: str | None
    state: Any
    prosody: Prosody | None = None
    options: StreamOptions = DEFAULT_STREAM_OPTIONS
    shared: dict[str, Any] = field(default_factory=dict)
    emotion_track: EmotionTrack | None = None


@runtime_checkable
class Step(Protocol):
    """One bound postprocess step.

    What the chain needs to know about a step is declared here, not looked up:
    ``feature`` names the alive-feature switch the step belongs to (``""``: none;
    a stream with it off gets :meth:`bypass`), ``uses_prosody`` says it reads voice
    features, and ``keyed_emotions`` lists the names a timed emotion key may use.
    :class:`StepBase` holds the defaults."""

    type_name: ClassVar[str]
    feature: ClassVar[str]
    uses_prosody: ClassVar[bool]
    output_names: tuple[str, ...]

    @property
    def emotions(self) -> frozenset[str]:
        """Emotion names that this step reacts to (empty when it ignores emotions)."""
        ...

    @property
    def keyed_emotions(self) -> frozenset[str]:
        """Names a timed emotion key may use (empty for steps without emotions)."""
        ...

    def new_state(self, rng: np.random.Generator) -> Any:
        """Fresh per-stream state (``None`` for stateless steps)."""
        ...

    def bypass(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        """The frames of a stream that switched this step's ``feature`` off."""
        ...

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        """Return new frames ``[n, len(output_names)]``; never modify ``frames``."""
        ...


class StepBase:
    """Defaults of a :class:`Step`: no feature switch, no voice features, no emotions."""

    type_name: ClassVar[str] = ""
    feature: ClassVar[str] = ""
    uses_prosody: ClassVar[bool] = False
    output_names: tuple[str, ...]

    @property
    def emotions(self) -> frozenset[str]:
        return frozenset()

    @property
    def keyed_emotions(self) -> frozenset[str]:
        return frozenset()

    def bypass(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        return as_float32(frames, len(self.output_names), step=self.type_name).copy()


class StatelessStep(StepBase):
    """Mixin with the defaults of a step that keeps no per-stream state."""

    def new_state(self, rng: np.random.Generator) -> Any:
        return None


def base_emotion(name: str) -> str:
    """``"anger_3"`` -> ``"anger"``; names without an intensity suffix are unchanged."""
    return _INTENSITY_SUFFIX.sub("", name)


def channel_indices(wanted: Iterable[str], available: Sequence[str], *, step: str) -> list[int]:
    """Column indices of ``wanted`` in ``available``.

    An exact match wins; otherwise a case-insensitive one, so ``JawOpen`` (UniTalker)
    and ``jawOpen`` (Apple's spelling) refer to the same channel. Unknown names are a
    :class:`ConfigError`: a typo in a profile should fail at load, not silently no-op.
    """
    exact = {n: i for i, n in enumerate(available)}
    folded: dict[str, int] = {}
    for i, n in enumerate(available):
        folded.setdefault(n.casefold(), i)
    out: list[int] = []
    for name in wanted:
        idx = exact.get(name, folded.get(name.casefold()))
        if idx is None:
            raise ConfigError(
                f"step {step!r}: channel {name!r} is not among its input channels "
                f"({len(available)} channels, e.g. {list(available[:5])})"
            )
        out.append(idx)
    return out


def load_json_path(path_text: str, env: BindEnv) -> tuple[Path, Any]:
    """Resolve ``path_text`` against the profile folder; return the path and, for a
    file, its parsed JSON (``None`` for a directory)."""
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        if env.base_dir is None:
            raise ConfigError(f"relative data path {path_text!r} in a profile without a folder")
        path = env.base_dir / path
    if path.is_dir():
        return path, None
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"profile data file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read profile data file {path}: {exc}") from exc


def load_named_json(source: str, env: BindEnv) -> dict[str, Any]:
    """A ``{name: data}`` table from a JSON file holding the whole table, or from a
    directory whose ``<name>.json`` files each hold one entry (the original's layout)."""
    path, data = load_json_path(source, env)
    if data is not None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of named entries")
        return data
    table: dict[str, Any] = {}
    for file in sorted(path.glob("*.json")):
        table[file.stem] = load_json_path(str(file), env)[1]
    if not table:
        raise ConfigError(f"{path}: directory holds no .json files")
    return table


def as_float32(frames: FloatArray, n_channels: int, *, step: str) -> FloatArray:
    """Check the input shape once, at the step boundary."""
    if frames.ndim != 2 or frames.shape[1] != n_channels:
        raise ValueError(
            f"step {step!r} expects frames of shape [n, {n_channels}], got {frames.shape}"
        )
    return np.asarray(frames, dtype=np.float32)


class FeatureStep(StepBase):
    """Base of the switchable "alive" steps (head, gaze, blinks, tongue, arousal).

    ``feature`` names the switch (:data:`FEATURES`); ``uses_prosody`` tells the chain
    the step reads voice features. The work is :meth:`run_batch`, over the new frames
    of many streams at once (:class:`~audio2face.postprocess.batch.Batch`), with the
    streams' states as the rows of one float64 matrix; calling the step on one
    stream's frames (:meth:`__call__`) is a batch of one. :meth:`bypass` is what a
    stream that switched the feature off gets: the frames unchanged (steps that add
    channels override :meth:`bypass_rows`).
    """

    uses_prosody: ClassVar[bool] = True
    fps: float

    @property
    def n_inputs(self) -> int:
        """Input channels (the output's, unless the step appends some)."""
        return len(self.output_names)

    def active(self, options: StreamOptions) -> bool:
        """Whether a stream with ``options`` runs this step (else :meth:`bypass_rows`)."""
        return self.feature not in options.off

    @property
    def state_size(self) -> int:
        """Length of a stream's state row."""
        raise NotImplementedError

    def new_state(self, rng: np.random.Generator) -> Any:
        """A stream's fresh state row, its random key drawn from ``rng``."""
        return self.state_from_key(int(rng.integers(0, 2**63)))

    def state_from_key(self, key: int) -> Any:
        """A stream's fresh state row with the 63-bit random ``key`` (columns 0 and 1)."""
        raise NotImplementedError

    def run_batch(self, frames: FloatArray, batch: Batch, states: Any) -> FloatArray:
        """New frames for the rows of ``batch``; ``states`` (one row per stream) are
        advanced in place. ``frames`` is float32 ``[rows, n_inputs]``, not modified."""
        raise NotImplementedError

    def bypass_rows(self, frames: FloatArray) -> FloatArray:
        """The frames as they are (a copy), for streams with this feature off."""
        return frames.copy()

    def bypass(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        return self.bypass_rows(as_float32(frames, self.n_inputs, step=self.type_name))

    def __call__(self, frames: FloatArray, ctx: StepContext) -> FloatArray:
        """One stream's frames: a batch of one (``ctx.state`` is replaced)."""
        from audio2face.postprocess.batch import Batch

        x = as_float32(frames, self.n_inputs, step=self.type_name)
        if not self.active(ctx.options):
            return self.bypass_rows(x)
        batch = Batch.of(
            [x.shape[0]], [ctx.frame_index], self.fps, ctx.prosody, [ctx.options], ctx.shared
        )
        states = np.array(ctx.state, dtype=np.float64)[None, :]
        out = self.run_batch(x, batch, states)
        ctx.state = states[0]
        return out
