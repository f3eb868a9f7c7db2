#!/usr/bin/env bash
# The runs behind docs/benchmarks.md ("Session 5": the overload ramps with the lag
# watchdog). CPU-heavy: run on an otherwise idle machine. The UniTalker-sized models
# come from
#   python benchmarks/make_unitalker_like.py benchmarks/models/unitalker_like.onnx
#   audio2face quantize benchmarks/models/unitalker_like.onnx -o benchmarks/models/unitalker_like_int8.onnx
set -uo pipefail  # a run that misses its bound exits 1; the suite goes on
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/session5}
mkdir -p "$OUT"
what=${1:-all}
if [[ $what == all || $what == overload ]]; then
  $PY benchmarks/overload.py --max-streams 200 --step-s 0.1 --hold-s 15 --out "$OUT/overload_default"
  $PY benchmarks/overload.py --max-streams 10 --step-s 2 --hold-s 15 \
    --unitalker-model benchmarks/models/unitalker_like.onnx --out "$OUT/overload_unitalker_fp32"
  $PY benchmarks/overload.py --max-streams 16 --step-s 1.5 --hold-s 15 \
    --unitalker-model benchmarks/models/unitalker_like_int8.onnx --out "$OUT/overload_unitalker_int8"
fi
