#!/bin/bash
# session 16, issue 12: package a run chosen by rule.md's release rule as the default model and
# regenerate the model card: export into the package, score held-out (and v1.0.0 on the same
# split), validation and engine speed (python -m training.recipe --skip-data --skip-train).
# usage: release.sh RUN   (a training/work/RUN/model.pt that seed_run.sh trained)
cd "$(dirname "$0")/../../../.." || exit 1
set -euo pipefail
run=$1
cp "training/work/$run/model.pt" training/work/model.pt
cp "training/work/$run/model.json" training/work/model.json
PYTHONPATH=. .venv/bin/python -m training.recipe --corpus data/corpus9 --skip-data --skip-train
R=benchmarks/results/session16/issue12
cp training/work/quality.json "$R/${run}_heldout.json"
cp training/work/quality_baseline.json "$R/v1.0.0_heldout.json"
cp training/work/quality_validation.json "$R/${run}_release_validation.json"
cp training/work/engine_speed.json "$R/engine_speed.json"
