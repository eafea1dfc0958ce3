"""Write ssrbench/models/robustbench_reported.json: RobustBench's own reported clean and AutoAttack accuracy
of each CIFAR-10 L-inf model, from a RobustBench checkout's model_info/cifar10/Linf/*.json.

The robustbench wheel does not ship these files, so ssrbench keeps this copy and records its numbers
beside each base it loads.

    python scripts/robustbench_reported.py PATH/TO/robustbench --commit $(git -C PATH/TO/robustbench rev-parse HEAD)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "ssrbench" / "models" / "robustbench_reported.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a RobustBench source checkout (its model_info folder)")
    ap.add_argument("--commit", required=True, help="the checkout's commit, recorded as the source")
    args = ap.parse_args()
    folder = args.checkout / "model_info" / "cifar10" / "Linf"
    models = {}
    for path in sorted(folder.glob("*.json")):
        info = json.loads(path.read_text())
        models[path.stem] = {
            "clean_acc": float(info["clean_acc"]),
            "autoattack_acc": float(info["autoattack_acc"]),
            "architecture": info.get("architecture", ""),
        }
    doc = {
        "source": f"RobustBench model_info/cifar10/Linf at commit {args.commit}",
        "models": models,
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"{len(models)} models -> {OUT}")


if __name__ == "__main__":
    main()
