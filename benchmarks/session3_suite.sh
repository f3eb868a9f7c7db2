#!/usr/bin/env bash
# The runs behind docs/benchmarks.md ("Session 3": stream runner, short utterances,
# protocol v2, live sinks, overload, alive features), each new/old pair in one period.
# OLD_SRC: a checkout of the commit before the runner (git worktree add /tmp/old 3906d6f)
# to rerun the same commands against the old server. CPU-heavy: an otherwise idle machine.
set -uo pipefail  # a run that misses its bound exits 1; the suite goes on
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/session3}
OLD_SRC=${OLD_SRC:-}
mkdir -p "$OUT"
old=()
[[ -n $OLD_SRC ]] && old=(--server-cmd "env PYTHONPATH=$OLD_SRC $PWD/$PY -m audio2face.cli serve")
what=${1:-all}
pair() {  # name, then bench args: the new server, then (with OLD_SRC) the old one
  local name=$1; shift
  $PY benchmarks/latency.py "$@" --out "$OUT/$name"
  if [[ -n $OLD_SRC ]]; then $PY benchmarks/latency.py "$@" "${old[@]}" --out "$OUT/${name}_old"; fi
}
if [[ $what == all || $what == default ]]; then
  pair default_workers2 --p95-bound 0.15 --streams 100,150 --seconds 15 --stagger 2 --set workers=2 --keep-going
  pair default_one --p95-bound 0.15 --streams 75,100,125 --seconds 15 --stagger 2 --keep-going
fi
if [[ $what == all || $what == short ]]; then
  pair short_workers2 --p95-bound 0.15 --streams 100,150 --seconds 30 --stagger 2 --utterances short --set workers=2 --keep-going
  pair short_one --p95-bound 0.15 --streams 50,100 --seconds 30 --stagger 2 --utterances short --keep-going
fi
if [[ $what == all || $what == v2 ]]; then
  $PY benchmarks/latency.py --protocol v2 --p95-bound 0.15 --streams 75,100,125 --seconds 15 --stagger 2 --keep-going --out "$OUT/default_one_v2"
fi
if [[ $what == all || $what == unitalker ]]; then
  U=(--set unitalker_model=benchmarks/models/unitalker_like_int8.onnx --set default_profile=unitalker
     --stagger 2 --seconds 15 --keep-going --set unitalker_mode=window
     --set window_left_context_s=0 --set window_hop_s=1.5 --set window_lookahead_s=0 --set window_crossfade_s=0)
  pair unitalker_int8_capacity "${U[@]}" --p95-bound 2.5 --streams 8,14
  FP32=(--set default_profile=unitalker --stagger 2 --seconds 15 --keep-going --set unitalker_mode=window
        --set window_left_context_s=0 --set window_hop_s=1.5 --set window_lookahead_s=0 --set window_crossfade_s=0
        --set unitalker_model=benchmarks/models/unitalker_like.onnx)
  pair unitalker_fp32_capacity "${FP32[@]}" --p95-bound 2.5 --streams 4,8
  LAT=(--set default_profile=unitalker --stagger 2 --seconds 15 --keep-going --set unitalker_mode=window
       --set window_left_context_s=0 --set window_hop_s=0.5 --set window_lookahead_s=0.1 --set window_crossfade_s=0.1
       --set unitalker_model=benchmarks/models/unitalker_like_int8.onnx)
  pair unitalker_int8_latency "${LAT[@]}" --p95-bound 1.0 --streams 8
fi
if [[ $what == all || $what == live ]]; then
  $PY benchmarks/live_latency.py --seconds 20 --out "$OUT/live_latency.json"
fi
if [[ $what == all || $what == ray ]]; then
  OUT=$OUT benchmarks/ray_capacity.sh
fi
if [[ $what == all || $what == overload ]]; then
  $PY benchmarks/overload.py --max-streams 200 --step-s 0.1 --hold-s 15 --out "$OUT/overload_default"
  $PY benchmarks/overload.py --max-streams 10 --step-s 2 --hold-s 15 \
    --unitalker-model benchmarks/models/unitalker_like.onnx --out "$OUT/overload_unitalker_fp32"
  $PY benchmarks/overload.py --max-streams 16 --step-s 1.5 --hold-s 15 \
    --unitalker-model benchmarks/models/unitalker_like_int8.onnx --out "$OUT/overload_unitalker_int8"
fi
if [[ $what == all || $what == alive ]]; then
  $PY benchmarks/alive.py --seconds 60 --out "$OUT/alive.json"
fi
