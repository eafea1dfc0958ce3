#!/usr/bin/env bash
# leaderboards/quick-robust.json under the fair-verdict protocol (schema 5): the static base attacked as its
# defenses are (its own attacks, the standard AutoAttack that --adaptive adds with the `attacks` extra, and
# transfer both ways), classifier-first over three training seeds, multitask over one. Meant for one GPU
# (the H200 ran the single-seed file in 19.6 minutes); on 2 CPU cores it takes many hours -- every stage
# and evaluation resumes, so it may be rerun after an interruption with the same command.
#
#   DEVICE=cuda DATA_DIR=../shared/data bash scripts/quick_robust_seeds.sh
#
# Run it from a clean checkout (the files record the commit); the parts land in leaderboards/quick-robust/
# and the merged file in leaderboards/quick-robust.json. Then regenerate the README's blocks:
# python scripts/regenerate_docs.py.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
DATA_DIR=${DATA_DIR:-../shared/data}
PARTS=leaderboards/quick-robust
RUN=(ssrbench run --preset quick-robust --attacks fgsm,pgd10,apgd-ce --adaptive --device "$DEVICE"
     --data-dir "$DATA_DIR")
python -c "import torchattacks" 2>/dev/null || { echo "the attacks extra is missing: pip install '.[attacks]'" >&2; exit 2; }
mkdir -p "$PARTS"
"${RUN[@]}" --tasks inpaint,rotation --modes classifier-first --seeds 0,1,2 --out "$PARTS/classifier-first.json"
"${RUN[@]}" --tasks inpaint --modes multitask --seed 0 --out "$PARTS/multitask-inpaint.json"
"${RUN[@]}" --tasks rotation --modes multitask --seed 0 --out "$PARTS/multitask-rotation.json"
ssrbench merge "$PARTS/classifier-first.json" "$PARTS/multitask-inpaint.json" "$PARTS/multitask-rotation.json" \
  --out leaderboards/quick-robust.json
ssrbench base-findings leaderboards/quick-robust.json
