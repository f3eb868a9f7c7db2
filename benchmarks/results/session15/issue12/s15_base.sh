#!/bin/bash
# session 15, issue 12: 2.1.0's recipe (every training default, 96 channels) at one seed on
# data/corpus9 as built on session 15's machine, which is the plan of training/data/text-lock.json
# (benchmarks/results/session15/text_lock_check.txt): reference runs that a later session can pair
# its candidates with after `python -m training.data.build --out data/corpus9 --text-lock
# training/data/text-lock.json`. Trained, exported, scored on validation, gated, on one CPU.
# usage: s15_base.sh SEED CPU   (ran as `s15_base.sh 1234 0` and `s15_base.sh 7 1`)
cd "$(dirname "$0")/../../../.." || exit 1
# Since 2.2.0 the recipe's vtl range is 0.85..1.25; 2.1.0's is passed explicitly so this still reruns it.
exec benchmarks/quality/seed_run.sh "s15_base$1" "$1" "$2" benchmarks/results/session15/issue12 --vtl-range 0.85 1.15
