#!/bin/bash
# session 14, issue 12: one seed of 2.1.0's recipe at 128 channels on data/corpus9, trained, exported,
# scored on validation and gated, on one CPU.
# usage: s14_seed.sh SEED CPU
cd "$(dirname "$0")/../../../.." || exit 1
exec benchmarks/quality/seed_run.sh "s14_w128_$1" "$1" "$2" benchmarks/results/session14/issue12 --channels 128
