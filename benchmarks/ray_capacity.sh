#!/usr/bin/env bash
# Capacity of the Ray Serve deployment with 1 and with 2 replicas on this machine: the
# same paced v1 streams as `audio2face bench`, through Ray's HTTP proxy on :8000.
# Needs `pip install -e '.[ray]'`; CPU-heavy: run on an otherwise idle machine.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SERVE=${SERVE:-$(dirname "$PY")/serve}
RAY=${RAY:-$(dirname "$PY")/ray}
OUT=${OUT:-benchmarks/results/session3}
STREAMS=${STREAMS:-25,50,75,100}
mkdir -p "$OUT"
for replicas in 1 2; do
  "$RAY" stop --force >/dev/null 2>&1
  PYTHONPATH="$PWD/deploy/ray${PYTHONPATH:+:$PYTHONPATH}" "$RAY" start --head --num-cpus 2 --include-dashboard=false --disable-usage-stats >/dev/null 2>&1
  # A replica asks for no whole CPU (num_cpus=0.5) so two fit on the 2-core machine; the
  # service's threads are split as for `serve --workers 2` when there are two.
  PYTHONPATH="$PWD/deploy/ray" AUDIO2FACE_INFERENCE_WORKERS=1 "$SERVE" run --non-blocking --app-dir deploy/ray \
    audio2face_serve:build min_replicas=$replicas max_replicas=$replicas num_cpus=0.5 \
    >"$OUT/ray_serve_$replicas.log" 2>&1
  for _ in $(seq 120); do
    curl -sf http://127.0.0.1:8000/ready >/dev/null && break
    sleep 1
  done
  $PY benchmarks/latency.py --url ws://127.0.0.1:8000/api/v1/streaming_audio2face/ws \
    --p95-bound 0.15 --streams "$STREAMS" --seconds 15 --stagger 2 --keep-going \
    --out "$OUT/ray_replicas_$replicas"
  "$SERVE" shutdown -y >/dev/null 2>&1
done
"$RAY" stop --force >/dev/null 2>&1
