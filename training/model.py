"""The default model: a small valid-convolution network, log-mel -> ARKit 52.

Shape of the network (C channels, all convolutions *valid*, no padding)::

    log-mel [B, T, 40] --(x - mean) / std-->  (normalisation is part of the graph)
    conv k3            40 -> C   100 Hz   BN ReLU
    conv k4 stride 2    C -> C    50 Hz   BN ReLU
    4 x residual block (conv k3 dilation d, BN, ReLU, conv 1x1) + centre-cropped skip
    conv 1x1            C -> 52   sigmoid                         -> [B, T', 52]

It is non-recurrent and has no padding, so an output depends only on a fixed window
of ``receptive_field`` feature frames: a stream can run it on any span of features
(starting on an even frame, for the stride) and get exactly the offline outputs.
Output ``j`` of a span that starts at feature ``s`` shows the face at feature frame
``s + 2 j + left_context``; the remaining ``right_context`` frames are look-ahead.

Why this shape: it is cheap (about 0.1 M multiply-adds per 10 ms), wide enough in
time (0.66 s) to see whole syllables, and exports to a plain ONNX graph with a
dynamic batch and time axis for cross-stream batching. Batch norms (folded into
the convolutions at export) keep training from collapsing: without them, a
3e-3 learning rate killed every ReLU within a few hundred steps and the model
predicted the mean face.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ModelConfig", "SpeechToFace", "load_checkpoint"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters. ``right_context`` is the network look-ahead in
    100 Hz feature frames; everything else of the receptive field is left context."""

    n_mels: int = 40
    channels: int = 96
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    n_out: int = 52
    right_context: int = 6

    @property
    def stride(self) -> int:
        return 2

    @property
    def receptive_field(self) -> int:
        """Feature frames (100 Hz) that one output sees."""
        return 3 + 3 + sum(2 * d * self.stride for d in self.dilations)

    @property
    def left_context(self) -> int:
        return self.receptive_field - 1 - self.right_context

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "receptive_field": self.receptive_field,
                "left_context": self.left_context, "stride": self.stride}


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, channels, 3, dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation
        return x[:, :, d:-d] + self.mix(torch.relu(self.norm(self.conv(x))))


class SpeechToFace(nn.Module):
    """``forward(feats [B, T, n_mels]) -> weights [B, (T - RF) // 2 + 1, n_out]``."""

    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        c = config.channels
        self.config = config
        self.register_buffer("mean", torch.zeros(config.n_mels))
        self.register_buffer("std", torch.ones(config.n_mels))
        self.conv_in = nn.Conv1d(config.n_mels, c, 3)
        self.norm_in = nn.BatchNorm1d(c)
        self.down = nn.Conv1d(c, c, 4, stride=config.stride)
        self.norm_down = nn.BatchNorm1d(c)
        self.blocks = nn.ModuleList(_Block(c, d) for d in config.dilations)
        self.head = nn.Conv1d(c, config.n_out, 1)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        x = ((feats - self.mean) / self.std).transpose(1, 2)
        x = torch.relu(self.norm_in(self.conv_in(x)))
        x = torch.relu(self.norm_down(self.down(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x).transpose(1, 2)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(feats))

    def n_outputs(self, n_frames: int) -> int:
        rf = self.config.receptive_field
        return 0 if n_frames < rf else (n_frames - rf) // self.config.stride + 1


def load_checkpoint(path, weights: str = "ema") -> tuple[SpeechToFace, dict]:  # noqa: ANN001 - a path
    """The network a ``training.train`` checkpoint holds, in eval mode, and the
    checkpoint's ``info`` (the training log).

    ``weights="ema"``: its ``state_dict`` (the averaged weights when training ran with an
    EMA, else the only weights there are); ``"raw"``: the last step's (``raw_state_dict``)."""
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = dict(state["config"])
    cfg["dilations"] = tuple(cfg["dilations"])
    model = SpeechToFace(ModelConfig(**cfg))
    key = "raw_state_dict" if weights == "raw" else "state_dict"
    if key not in state:
        raise ValueError(f"{path} has no {key} (trained without --ema-decay?)")
    model.load_state_dict(state[key])
    return model.eval(), dict(state.get("info", {}))
