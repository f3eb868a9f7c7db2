#!/bin/bash
# session 14, issue 12: one seed of 2.1.0's recipe at 128 channels on data/corpus9, trained, exported,
# scored on validation and gated, on one CPU.
# usage: s14_seed.sh SEED CPU
cd /work/main
export PYTHONPATH=.
R=benchmarks/results/session14/issue12
SEED=$1
PY="taskset -c $2 .venv/bin/python"
n=s14_w128_$SEED
mkdir -p training/work/$n
echo "=== $(date -u +%H:%M:%S) train $n"
$PY -m training.train --corpus data/corpus9 --out training/work/$n/model.pt --seed $SEED --threads 1 --channels 128 > training/work/$n.log 2>&1 || echo FAILED
$PY -m training.export --ckpt training/work/$n/model.pt --out training/work/$n/cand.onnx > training/work/$n.export.log 2>&1
echo "=== $(date -u +%H:%M:%S) evaluate"
$PY -m training.evaluate --model training/work/$n/cand.onnx --corpus data/corpus9 --split validation --out $R/${n}_validation.json > $R/${n}_validation.txt 2> training/work/eval_$n.err
$PY benchmarks/quality/gate_repeats.py --model training/work/$n/cand.onnx --repeats 12 --out $R/${n}_gate.json > $R/${n}_gate.txt 2> training/work/gate_$n.err
echo "=== $(date -u +%H:%M:%S) done"
