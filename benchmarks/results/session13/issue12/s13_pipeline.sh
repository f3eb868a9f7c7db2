#!/bin/bash
# session 13, issue 12: schwa as AX (rule: benchmarks/results/session13/issue12/rule.md)
# usage: s13_pipeline.sh LANE   (LANE 1: seeds 1234 then 99 on CPU 1; LANE 0: references, seed 7 on CPU 0)
cd /work/main
export PYTHONPATH=.
LANE=$1
PY="taskset -c $LANE .venv/bin/python"
R=benchmarks/results/session13/issue12
SHIP=src/audio2face/engines/default/audio2face_default.onnx
stamp() { echo "=== $(date -u +%H:%M:%S) $*"; }
train() { # name seed
  local n=$1 s=$2
  mkdir -p training/work/$n
  stamp "train $n seed $s"
  $PY -m training.train --corpus data/corpus9 --out training/work/$n/model.pt --seed $s --threads 1 > training/work/$n.log 2>&1 || { stamp "train $n FAILED"; return 1; }
  $PY -m training.export --ckpt training/work/$n/model.pt --out training/work/$n/cand.onnx > training/work/$n.export.log 2>&1 || stamp "export $n FAILED"
  stamp "done $n"
}
score() { # label model
  stamp "evaluate $1"
  $PY -m training.evaluate --model $2 --corpus data/corpus9 --split validation --out $R/${1}_validation.json > $R/${1}_validation.txt 2> training/work/eval_${1}.err || stamp "eval $1 FAILED"
}
gate() { stamp "gate $1"; $PY benchmarks/quality/gate_repeats.py --model $2 --repeats 12 --out $R/${1}_gate.json > $R/${1}_gate.txt 2> training/work/gate_$1.err || stamp "gate $1 FAILED"; }
if [ "$LANE" = 1 ]; then
  train s13_ax 1234 && score s13_ax training/work/s13_ax/cand.onnx && gate s13_ax training/work/s13_ax/cand.onnx
  train s13_ax99 99 && score s13_ax99 training/work/s13_ax99/cand.onnx && gate s13_ax99 training/work/s13_ax99/cand.onnx
else
  score shipped_2.1.0 $SHIP
  score v1.0.0 training/work/v1.0.0/audio2face_default.onnx
  train s13_ax7 7 && score s13_ax7 training/work/s13_ax7/cand.onnx && gate s13_ax7 training/work/s13_ax7/cand.onnx
fi
stamp "lane $LANE done"
