#!/usr/bin/env bash
# The runs behind docs/benchmarks.md ("Session 5": the overload ramps with the lag
# watchdog): session 3's overload commands, rerun into their own folder. CPU-heavy: run
# on an otherwise idle machine. The UniTalker-sized models come from
#   python benchmarks/make_unitalker_like.py benchmarks/models/unitalker_like.onnx
#   audio2face quantize benchmarks/models/unitalker_like.onnx -o benchmarks/models/unitalker_like_int8.onnx
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/session5} exec benchmarks/session3_suite.sh "${1:-overload}"
