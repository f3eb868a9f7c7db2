#!/bin/bash
# session 17, issue 12: 2.2.0's recipe with 8 rendered variants per clip instead of 4
# (rule.md beside this file), at one seed on data/corpus9 as session 15 built it;
# paired with session 16's s16_vtl<SEED> runs.
# usage: s17_var8.sh SEED CPU
cd "$(dirname "$0")/../../../.." || exit 1
exec benchmarks/quality/seed_run.sh "s17_var8_$1" "$1" "$2" benchmarks/results/session17/issue12 --variants 8
