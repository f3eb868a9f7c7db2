#!/usr/bin/env bash
# The runs behind docs/benchmarks.md ("Latency and throughput", "Micro-batching",
# "Threads"). CPU-heavy: run on an otherwise idle machine. Results land in
# benchmarks/results/. Needs benchmarks/models/unitalker_like.onnx
# (python benchmarks/make_unitalker_like.py benchmarks/models/unitalker_like.onnx).
set -uo pipefail  # a run that misses its bound exits 1; the suite goes on
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=benchmarks/models/unitalker_like.onnx
INT8=benchmarks/models/unitalker_like_int8.onnx  # audio2face quantize $MODEL -o $INT8
OUT=benchmarks/results
UNITALKER=(--set unitalker_model=$MODEL --set default_profile=unitalker --stagger 2 --seconds 15
           --keep-going --modes window,segment)
UNITALKER_INT8=(--set unitalker_model=$INT8 --set default_profile=unitalker --stagger 2 --seconds 15
                --keep-going --modes window,segment)

what=${1:-all}

if [[ $what == all || $what == threads ]]; then
  $PY benchmarks/threads.py $MODEL --window-s 0.8 --out $OUT/threads_unitalker_like.json
fi

if [[ $what == all || $what == unitalker ]]; then
  # latency point: 0.5 s hop, 0.1 s look-ahead and cross-fade, no left context (compute x1.2)
  $PY benchmarks/latency.py "${UNITALKER[@]}" --p95-bound 1.0 --streams 1,2,4,6,8 \
    --set window_left_context_s=0 --set window_hop_s=0.5 --set window_lookahead_s=0.1 \
    --set window_crossfade_s=0.1 --out $OUT/unitalker_latency
fi

if [[ $what == all || $what == unitalker || $what == unitalker-capacity ]]; then
  # capacity point: no overlap, 1.5 s hop (compute x1.0)
  $PY benchmarks/latency.py "${UNITALKER[@]}" --p95-bound 2.5 --streams 8,10,12 \
    --set window_left_context_s=0 --set window_hop_s=1.5 --set window_lookahead_s=0 \
    --set window_crossfade_s=0 --out $OUT/unitalker_capacity
  # the defaults (quality point), one stream: the latency floor
  $PY benchmarks/latency.py "${UNITALKER[@]}" --p95-bound 1.5 --streams 1 --modes window \
    --out $OUT/unitalker_defaults
fi

if [[ $what == all || $what == int8 ]]; then
  [[ -f $INT8 ]] || $PY -m audio2face.cli quantize $MODEL -o $INT8
  $PY benchmarks/threads.py $INT8 --window-s 0.6 --out $OUT/threads_unitalker_like_int8.json
  # the same two points as above, on int8 weights
  $PY benchmarks/latency.py "${UNITALKER_INT8[@]}" --p95-bound 1.0 --streams 1,2,4,6,8 \
    --set window_left_context_s=0 --set window_hop_s=0.5 --set window_lookahead_s=0.1 \
    --set window_crossfade_s=0.1 --out $OUT/unitalker_int8_latency
  $PY benchmarks/latency.py "${UNITALKER_INT8[@]}" --p95-bound 2.5 --streams 8,10,12,14 \
    --set window_left_context_s=0 --set window_hop_s=1.5 --set window_lookahead_s=0 \
    --set window_crossfade_s=0 --out $OUT/unitalker_int8_capacity
fi

if [[ $what == all || $what == default ]]; then
  $PY benchmarks/latency.py --p95-bound 0.15 --streams 1,25,50,75,100,125,150 --seconds 15 \
    --stagger 2 --out $OUT/default_latency
  $PY benchmarks/latency.py --p95-bound 0.15 --streams 100,125,150 --seconds 15 --stagger 2 \
    --set max_batch_size=1 --out $OUT/default_latency_batch1
  $PY benchmarks/latency.py --p95-bound 0.15 --streams 100,125,150,175,200 --seconds 15 \
    --stagger 2 --set workers=2 --out $OUT/default_latency_workers2
  $PY benchmarks/batching.py --streams 64 --seconds 8 --out $OUT/batching_default.json
fi

if [[ $what == all || $what == short ]]; then
  # v1 clients talk one connection per utterance: 2-6 s utterances, each on a new socket.
  $PY benchmarks/latency.py --p95-bound 0.15 --streams 50,100,150 --seconds 30 --stagger 2 \
    --utterances short --set workers=2 --out $OUT/default_short_workers2
  $PY benchmarks/latency.py --p95-bound 0.15 --streams 50,100,150 --seconds 30 --stagger 2 \
    --utterances short --out $OUT/default_short
fi
