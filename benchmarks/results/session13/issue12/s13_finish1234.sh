#!/bin/bash
# lane 1 without seed 99: wait for s13_ax's training, then export, score and gate it (CPU 1)
cd /work/main
export PYTHONPATH=.
PID=$1
while kill -0 $PID 2>/dev/null; do sleep 10; done
R=benchmarks/results/session13/issue12
PY="taskset -c 1 .venv/bin/python"
echo "=== $(date -u +%H:%M:%S) export s13_ax"
$PY -m training.export --ckpt training/work/s13_ax/model.pt --out training/work/s13_ax/cand.onnx > training/work/s13_ax.export.log 2>&1 || echo "export FAILED"
echo "=== $(date -u +%H:%M:%S) evaluate s13_ax"
$PY -m training.evaluate --model training/work/s13_ax/cand.onnx --corpus data/corpus9 --split validation --out $R/s13_ax_validation.json > $R/s13_ax_validation.txt 2> training/work/eval_s13_ax.err || echo "eval FAILED"
echo "=== $(date -u +%H:%M:%S) gate s13_ax"
$PY benchmarks/quality/gate_repeats.py --model training/work/s13_ax/cand.onnx --repeats 12 --out $R/s13_ax_gate.json > $R/s13_ax_gate.txt 2> training/work/gate_s13_ax.err || echo "gate FAILED"
echo "=== $(date -u +%H:%M:%S) lane 1 done"
