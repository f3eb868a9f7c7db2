#!/bin/bash
# session 16, issue 12: 2.1.0's recipe with the vocal-tract-length factors widened to 0.85..1.25
# (rule.md beside this file), at one seed on data/corpus9 as session 15 built it (the plan of
# training/data/text-lock.json); paired with session 15's s15_base<SEED> runs.
# usage: s16_vtl.sh SEED CPU
cd "$(dirname "$0")/../../../.." || exit 1
exec benchmarks/quality/seed_run.sh "s16_vtl$1" "$1" "$2" benchmarks/results/session16/issue12 --vtl-range 0.85 1.25
