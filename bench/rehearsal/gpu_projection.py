"""GPU-hours of whole MLRC cells, projected from the committed H200 measurements (no GPU run).

    python bench/rehearsal/gpu_projection.py [--md bench/results/rehearsal_gpu_projection.md]

The work of a cell is counted by dmlbench.estimate.workload exactly as ``--estimate`` counts it
(50 Bayesian trials x 4 folds, the best trial's test, 10 reproductions); the unit costs come from
files under bench/results/ measured on one NVIDIA H200:

- a training step: batch / images-per-second of the loader-fed ResNet50 step at 224 px, bf16,
  batch 128 (``train_throughput_h200.json``, ``b_fast``); BN-Inception (~2 GFLOPs a 227-px image
  against ResNet50's ~4.1) at batch 32 is not measured: the ResNet50 rate is used for it too, an
  assumption that is optimistic for small batches (per-step overheads) and pessimistic in FLOPs;
- an embedded image: 1 / the loader-alone rate of the same run (evaluation is decode-bound);
- scoring: the seconds per query x reference pair of the SOP-sized k-NN (``eval_gpu_h200.json``).

Every number printed is a projection, not a measurement. Epochs per fold are unknown before a run
(early stopping): the table gives two assumptions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY))

from dmlbench.estimate.probe import UnitCosts  # noqa: E402
from dmlbench.estimate.projection import duration, project  # noqa: E402
from dmlbench.estimate.workload import FoldSize, RetrievalSize, Schedule, Search, count_work  # noqa: E402

RESULTS = REPOSITORY / "bench" / "results"

#: (data set, folds' (train, val) images, test images, save_interval) under the MLRC split
#: (docs/protocol.md): CUB 75/25 train/val classes per fold of classes 1-100, Cars 74/24, SOP 8488/2829.
CELLS = {
    "CUB-200-2011": ([FoldSize(4398, 1466)] * 4, 5924, 2),
    "Cars196": ([FoldSize(6081, 1973)] * 4, 8131, 5),
    "SOP": ([FoldSize(44663, 14888)] * 4, 60502, 20),
}


def h200_unit_costs(batch_size: int) -> tuple[UnitCosts, dict[str, float]]:
    throughput = json.loads((RESULTS / "train_throughput_h200.json").read_text())
    evaluation = json.loads((RESULTS / "eval_gpu_h200.json").read_text())
    train_rate = throughput["variants"]["b_fast"]["images_per_s"]
    loader_rate = throughput["variants"]["b_fast"]["loader_only_images_per_s"]
    sop = next(case for case in evaluation["cases"] if case["case"] == "sop")
    run = next(run for run in sop["runs"] if run["method"] == "dmlbench")
    pairs = sop["samples"] ** 2
    later = min(run["wall_s_repeats"])
    costs = UnitCosts(
        dataset_s=0.0,
        fold_setup_s=10.0,
        step_s=batch_size / train_rate,
        embed_fixed_s=1.0,
        embed_per_image_s=1.0 / loader_rate,
        score_fixed_s=0.05,
        score_per_pair_s=later / pairs,
    )
    return costs, {"train_images_per_s": train_rate, "loader_images_per_s": loader_rate, "sop_knn_s": later}


def table(epochs_options: tuple[int, ...] = (50, 150)) -> str:
    costs, sources = h200_unit_costs(batch_size=32)
    lines = [
        "# MLRC cells on one GPU: projections from the H200 measurements",
        "",
        "Projected with `bench/rehearsal/gpu_projection.py` (see its docstring for every assumption): "
        f"training {sources['train_images_per_s']:.0f} images/s, embedding "
        f"{sources['loader_images_per_s']:.0f} images/s, SOP-sized k-NN {sources['sop_knn_s']:.3f} s; "
        "BN-Inception, batch 32, 100 iterations per epoch, 50 trials x 4 folds + the best trial's test "
        "+ 10 reproductions, 10 s per fold set-up and 10 s start-up per job. **Projections, not measurements.**",
        "",
        "| data set | epochs per fold (assumed) | training steps | projected GPU-hours | per trial |",
        "|---|---|---|---|---|",
    ]
    for name, (folds, test_images, save_interval) in CELLS.items():
        for epochs in epochs_options:
            schedule = Schedule(epochs, 100, save_interval, check_untrained_accuracy=True)
            work = count_work(folds, RetrievalSize(test_images, test_images), schedule, Search(50, 10))
            projection = project(work, costs, startup_s=10.0)
            per_trial = projection.total_s / (50 + 10 + 1)
            lines.append(
                f"| {name} | {epochs} | {work.training_steps:,} | {projection.total_s / 3600:.1f} | "
                f"{duration(per_trial)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--md", type=Path)
    args = parser.parse_args(argv)
    text = table()
    if args.md:
        args.md.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
