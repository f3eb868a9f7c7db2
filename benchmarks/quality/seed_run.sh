#!/bin/bash
# One run of issue 12's model experiments on one CPU: train on data/corpus9, export, score on the
# validation split, and run the rms gate 12 times (benchmarks/quality/gate_repeats.py).
# usage: seed_run.sh NAME SEED CPU RESULTS_DIR [training.train options ...]
# Writes training/work/NAME/{model.pt,cand.onnx} and its logs, and RESULTS_DIR/NAME_validation.{json,txt}
# and RESULTS_DIR/NAME_gate.{json,txt}. The sessions' seed scripts (benchmarks/results/session*/issue12/) call it.
cd "$(dirname "$0")/../.." || exit 1
export PYTHONPATH=.
n=$1
SEED=$2
PY="taskset -c $3 .venv/bin/python"
R=$4
shift 4
mkdir -p "training/work/$n" "$R"
echo "=== $(date -u +%H:%M:%S) train $n"
$PY -m training.train --corpus data/corpus9 --out "training/work/$n/model.pt" --seed "$SEED" --threads 1 "$@" > "training/work/$n.log" 2>&1 || echo FAILED
$PY -m training.export --ckpt "training/work/$n/model.pt" --out "training/work/$n/cand.onnx" > "training/work/$n.export.log" 2>&1
echo "=== $(date -u +%H:%M:%S) evaluate"
$PY -m training.evaluate --model "training/work/$n/cand.onnx" --corpus data/corpus9 --split validation --out "$R/${n}_validation.json" > "$R/${n}_validation.txt" 2> "training/work/eval_$n.err"
$PY benchmarks/quality/gate_repeats.py --model "training/work/$n/cand.onnx" --repeats 12 --out "$R/${n}_gate.json" > "$R/${n}_gate.txt" 2> "training/work/gate_$n.err"
echo "=== $(date -u +%H:%M:%S) done"
