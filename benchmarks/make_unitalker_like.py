"""Build a random-weight ONNX model with UniTalker's signature, size and compute.

The published ``unitalker_v0.4.0_base.onnx`` cannot be downloaded here, so benchmarks
use this stand-in: a WavLM-base-plus-sized encoder (the conv feature extractor and the
12-layer post-LN transformer with gated relative position bias, sized from
``../shared/seed-configs/wavlm-base-plus/config.json``), encoder features resampled
linearly to ``time_steps`` frames, a small conv decoder conditioned on ``emo_id`` and a
51-channel head. Inputs/outputs match UniTalker exactly::

    audio float32 [1, N], emo_id int32 [1], time_steps int32 [1] -> [1, time_steps, 51]

Usage (needs the train extra: ``pip install 'audio2face[train]'``)::

    python benchmarks/make_unitalker_like.py [OUT.onnx] [--config PATH] [--bench]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "unitalker_like.onnx"
DEFAULT_CONFIG = (
    Path(__file__).resolve().parents[2] / "shared" / "seed-configs" / "wavlm-base-plus" / "config.json"
)

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch convention)
    from torch import nn
except ImportError:  # pragma: no cover - optional dependency
    sys.exit("this script needs torch: pip install 'audio2face[train]'")


class FeatureExtractor(nn.Module):
    """WavLM's conv front end: 7 conv layers, GroupNorm on the first ("group" norm)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i, (c, k, s) in enumerate(
            zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"], strict=True)
        ):
            block: list[nn.Module] = [nn.Conv1d(c_in, c, k, s, bias=cfg["conv_bias"])]
            if i == 0 and cfg["feat_extract_norm"] == "group":
                block.append(nn.GroupNorm(c, c))
            block.append(nn.GELU())
            layers.append(nn.Sequential(*block))
            c_in = c
        self.layers = nn.Sequential(*layers)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.layers(audio[:, None, :])  # [B, 512, T]


class Attention(nn.Module):
    """Multi-head self-attention with WavLM's gated relative position bias."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.gate = nn.Linear(self.dh, 8)
        self.gate_const = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        g = torch.sigmoid(self.gate(q).view(b, self.heads, t, 2, 4).sum(-1))
        gate_a, gate_b = g[..., :1], g[..., 1:]
        bias = (gate_a * (gate_b * self.gate_const - 1.0) + 2.0) * pos_bias  # [B, H, T, T]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Post-LN transformer layer (``do_stable_layer_norm: false``)."""

    def __init__(self, d: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.attn = Attention(d, heads)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, pos_bias))
        return self.ln2(x + self.ffn(x))


class Encoder(nn.Module):
    """WavLM-base-plus sized encoder: features [B, T_enc, hidden] at 50 Hz."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
        eps = cfg["layer_norm_eps"]
        self.features = FeatureExtractor(cfg)
        self.proj_norm = nn.LayerNorm(cfg["conv_dim"][-1], eps=eps)
        self.proj = nn.Linear(cfg["conv_dim"][-1], d)
        k = cfg["num_conv_pos_embeddings"]
        self.pos_conv = nn.Conv1d(d, d, k, padding=k // 2, groups=cfg["num_conv_pos_embedding_groups"])
        self.norm = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(
            EncoderLayer(d, heads, cfg["intermediate_size"], eps) for _ in range(cfg["num_hidden_layers"])
        )
        self.num_buckets, self.max_distance = cfg["num_buckets"], 800
        self.rel_embed = nn.Embedding(self.num_buckets, heads)

    def _buckets(self, t: int) -> torch.Tensor:
        pos = torch.arange(t)
        rel = pos[None, :] - pos[:, None]
        half = self.num_buckets // 2
        buckets = (rel > 0).long() * half
        rel = rel.abs()
        exact = half // 2
        large = exact + (
            torch.log(rel.clamp(min=1).float() / exact)
            / math.log(self.max_distance / exact)
            * (half - exact)
        ).long()
        large = large.clamp(max=half - 1)
        return buckets + torch.where(rel < exact, rel, large)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.features(audio).transpose(1, 2)  # [B, T, 512]
        x = self.proj(self.proj_norm(x))
        t = x.shape[1]
        pos = self.pos_conv(x.transpose(1, 2))[:, :, :t]  # even kernel: drop the extra frame
        x = self.norm(x + F.gelu(pos).transpose(1, 2))
        bias = self.rel_embed(self._buckets(t)).permute(2, 0, 1)[None]  # [1, H, T, T]
        for layer in self.layers:
            x = layer(x, bias)
        return x


class UniTalkerLike(nn.Module):
    """Encoder, linear resampling to ``time_steps``, conv decoder, 51-channel head."""

    def __init__(self, cfg: dict, d_dec: int = 256, n_emo: int = 32, n_out: int = 51) -> None:
        super().__init__()
        self.encoder = Encoder(cfg)
        self.in_proj = nn.Linear(cfg["hidden_size"], d_dec)
        self.emo = nn.Embedding(n_emo, d_dec)
        self.convs = nn.ModuleList(nn.Conv1d(d_dec, d_dec, 5, padding=2) for _ in range(3))
        self.head = nn.Linear(d_dec, n_out)

    def forward(
        self, audio: torch.Tensor, emo_id: torch.Tensor, time_steps: torch.Tensor
    ) -> torch.Tensor:
        feats = self.encoder(audio)  # [1, T_in, 768]
        n_in = feats.shape[1]
        n_out = time_steps[0].item()
        torch._check(n_out >= 1)
        # Linear resampling with half-pixel centres, as F.interpolate(mode="linear").
        pos = (torch.arange(n_out, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5
        # Bounds as tensors: the exporter cannot mix a symbolic scalar into clamp().
        last = torch.scalar_tensor(n_in - 1, dtype=torch.float32)
        pos = torch.minimum(pos.clamp(min=0.0), last)
        lo = pos.floor().long()
        hi = torch.minimum(lo + 1, last.long())
        w = (pos - lo.float())[None, :, None]
        x = feats[:, lo] * (1.0 - w) + feats[:, hi] * w  # [1, T_out, 768]
        x = self.in_proj(x) + self.emo(emo_id.long())[:, None, :]
        y = x.transpose(1, 2)
        for conv in self.convs:
            y = y + F.gelu(conv(y))
        return self.head(y.transpose(1, 2))


def export(out: Path, config: Path) -> None:
    cfg = json.loads(config.read_text(encoding="utf-8"))
    torch.manual_seed(0)
    model = UniTalkerLike(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params / 1e6:.1f} M")
    audio = torch.randn(1, 32000)
    args = (audio, torch.tensor([10], dtype=torch.int32), torch.tensor([60], dtype=torch.int32))
    n = torch.export.Dim("n_samples", min=1600, max=16000 * 120)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            str(out),
            input_names=["audio", "emo_id", "time_steps"],
            output_names=["output"],
            dynamic_shapes=({1: n}, None, None),
            dynamo=True,
            external_data=False,
        )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB)")


def bench(path: Path, seconds: float = 4.0, repeats: int = 3) -> None:
    """Seconds of compute per second of audio, on 1 and 2 intra-op threads."""
    import numpy as np
    import onnxruntime as ort

    n = int(seconds * 16000)
    feeds = {
        "audio": np.random.default_rng(0).normal(size=(1, n)).astype(np.float32),
        "emo_id": np.array([10], dtype=np.int32),
        "time_steps": np.array([n * 30 // 16000], dtype=np.int32),
    }
    for threads in (1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, feeds)  # warm-up, and a shape check
        if y.shape != (1, feeds["time_steps"][0], 51):
            sys.exit(f"unexpected output shape {y.shape}")
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - t0)
        print(f"{threads} thread(s): {min(times) / seconds:.3f} s per audio second "
              f"(best of {repeats} on {seconds:.0f} s of audio)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--bench", action="store_true", help="time it with onnxruntime afterwards")
    ap.add_argument("--bench-only", action="store_true", help="time an existing file")
    args = ap.parse_args(argv)
    if not args.bench_only:
        export(args.out, args.config)
    if args.bench or args.bench_only:
        bench(args.out)


if __name__ == "__main__":
    main()
