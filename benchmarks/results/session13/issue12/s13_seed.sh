#!/bin/bash
# session 13, issue 12, round 2: one seed of 2.1.0's recipe on data/corpus9, trained, exported,
# scored on validation and gated, on one CPU.
# usage: s13_seed.sh SEED CPU   (ran as `s13_seed.sh 99 1` and `s13_seed.sh 42 0`)
cd "$(dirname "$0")/../../../.." || exit 1
exec benchmarks/quality/seed_run.sh "s13_ax$1" "$1" "$2" benchmarks/results/session13/issue12
