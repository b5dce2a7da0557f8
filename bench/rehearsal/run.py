"""Run published exp_configs at full data set size for a few training iterations, then the full
validation, test and report phases, and record what each phase costs.

    python bench/rehearsal/generate.py /data/rehearsal                  # the trees, once
    python bench/rehearsal/run.py --data /data/rehearsal --out /tmp/rehearsal \
        --datasets cub cars sop inshop --configs ms classification --iterations 10 \
        --json bench/results/rehearsal_cpu.json --md bench/results/rehearsal_cpu.md

Each run is ``python run.py --reproduce_results exp_configs/<name> --dataset_root DATA`` with the
training bounded (``--num_epochs_train 1 --iterations_per_epoch N --save_interval 1``): split
manager, sampler, losses, plugins and evaluation are the published config's. ``--trunk published``
keeps its trunk and image size; the ImageNet weights are replaced by random ones written into a
temporary TORCH_HOME (the rehearsal measures costs, not accuracy). ``--trunk light`` swaps in the
small demo network at 32 px to exercise everything else (data, splits, sampler, k-NN, records,
report) at full size on a CPU in minutes.

Recorded per run: wall, user+system CPU and peak RSS of the whole command (/usr/bin/time), the
wall time of each phase (meta/phase_times.json: training incl. validation per fold, test, report
figures), start-up (wall minus the phases), and the bytes written: checkpoints, records.db,
TensorBoard, report.html, the whole folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY))

from bench.estimate_check import UNITS, projected_seconds  # noqa: E402
from bench.rehearsal.summary import markdown_table  # noqa: E402

#: data set -> published exp_config per method (In-Shop has the classification recipe only).
CONFIGS = {
    "cub": {
        "ms": "cub_ms",
        "contrastive": "cub_contrastive",
        "classification": "cub_classification",
        "sdm": "cub_ms_sdm",
        "das": "cub_ms_das",
        "avsl": "cub_avsl",
        "contextual": "cub_contextual",
    },
    "cars": {
        "ms": "car_ms",
        "contrastive": "car_contrastive",
        "classification": "car_classification",
        "sdm": "car_ms_sdm",
        "das": "car_ms_das",
        "avsl": "car_avsl",
        "contextual": "car_contextual",
    },
    "sop": {
        "ms": "sop_ms",
        "contrastive": "sop_contrastive",
        "classification": "sop_classification",
        "das": "sop_ms_das",
        "avsl": "sop_avsl",
        "contextual": "sop_contextual",
    },
    "inshop": {"classification": "inshop_classification"},
}
LIGHT_OVERRIDES = [
    "--models~OVERRIDE~",
    "{trunk: {SmallConvNet: {}}, embedder: {MLP: {layer_sizes: [128]}}}",
    "--transforms~OVERRIDE~",
    "{train: {RandomResizedCrop: {size: 32, scale: [0.16, 1]}, RandomHorizontalFlip: {p: 0.5}}, "
    "eval: {Resize: {size: 32}, CenterCrop: {size: 32}}}",
    "--freeze_trunk_batchnorm",
    "false",
]
LIGHT_METHODS = {"ms", "contrastive", "sdm", "das", "classification"}  # the others need their own trunk


def write_random_weights(torch_home: Path) -> None:
    """Random-initialised weights under the file names the trunks look for (models/trunks.py)."""
    import torch
    import torchvision

    from dmlbench.models import bninception

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(bninception.BNInception(pretrained=False).state_dict(), folder / bninception.WEIGHTS_FILE)
    for name in ("resnet50",):
        weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        model = torchvision.models.get_model(name, weights=None)
        torch.save(model.state_dict(), folder / Path(weights.url).name)


def folder_bytes(folder: Path, pattern: str = "**/*") -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file() and not p.is_symlink())


def disk_written(experiment: Path) -> dict[str, int]:
    return {
        "checkpoints": folder_bytes(experiment, "*/checkpoints/*.pt"),
        "records_db": folder_bytes(experiment, "meta/records.db"),
        "tensorboard": folder_bytes(experiment, "*/tensorboard/**/*"),
        "report_html": folder_bytes(experiment, "meta/report.html"),
        "total": folder_bytes(experiment),
    }


def run_command(name: str, args: argparse.Namespace) -> list[str]:
    """``python run.py`` for the published config ``name``, its training bounded."""
    return [
        sys.executable,
        str(REPOSITORY / "run.py"),
        "--reproduce_results",
        str(REPOSITORY / "exp_configs" / name),
        "--experiment_name",
        f"{name}_{args.trunk}",
        "--root_experiment_folder",
        str(args.out),
        "--dataset_root",
        str(args.data),
        "--merge_argparse_when_resuming",
        "--num_epochs_train",
        "1",
        "--iterations_per_epoch",
        str(args.iterations),
        "--save_interval",
        "1",
        "--dataloader_num_workers",
        str(args.workers),
        *(LIGHT_OVERRIDES if args.trunk == "light" else []),
    ]


PHASE_LINE = re.compile(
    r"^  (start-up|fold set-up|training steps|validation|test|report)\s+([\d.]+) (s|min|h|days)\b",
    re.MULTILINE,
)


def estimate_first(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The same command with ``--estimate`` (it writes nothing): its projected total and phases,
    and how long the probe took."""
    start = time.perf_counter()
    done = subprocess.run(
        [*run_command(name, args), "--estimate"], capture_output=True, text=True, env=env, cwd=REPOSITORY
    )
    probe_s = time.perf_counter() - start
    (args.out / f"{name}_{args.trunk}.estimate.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["(no output)"])[-1], "probe_wall_s": probe_s}
    phases = {m[1]: float(m[2]) * UNITS[m[3]] for m in PHASE_LINE.finditer(done.stdout)}
    return {"total_s": projected_seconds(done.stdout), "phases_s": phases, "probe_wall_s": probe_s}


def run_one(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    experiment_name = f"{name}_{args.trunk}"
    timing_file = args.out / f".{experiment_name}.time"
    estimate = estimate_first(name, args, env) if args.estimate else None
    command = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(timing_file), *run_command(name, args)]
    log = args.out / f"{experiment_name}.log"
    print(f"-- {name} ({args.trunk}): log {log}", flush=True)
    load_before = os.getloadavg()[0]
    with open(log, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    outcome: dict[str, Any] = {
        "exit_code": code,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    if estimate is not None:
        outcome["estimate"] = estimate
    (args.out / f".{experiment_name}.exit").write_text(json.dumps(outcome) + "\n")
    return collect(name, args)


def collect(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The row of a finished run, from the files it left in ``args.out``."""
    experiment_name = f"{name}_{args.trunk}"
    experiment = args.out / experiment_name
    timing_file = args.out / f".{experiment_name}.time"
    log = args.out / f"{experiment_name}.log"
    exit_file = args.out / f".{experiment_name}.exit"
    if exit_file.exists():
        outcome = json.loads(exit_file.read_text())
    else:  # a run of an older driver: finished if it wrote its report
        outcome = {"exit_code": 0 if (experiment / "meta" / "report.json").exists() else 1}
    code = outcome["exit_code"]
    row: dict[str, Any] = {"config": name, "trunk": args.trunk, "log": str(log), **outcome}
    if timing_file.exists():
        wall, user, system, rss_kib = timing_file.read_text().split()[-4:]
        row.update(wall_s=float(wall), cpu_s=float(user) + float(system), peak_rss_mib=int(rss_kib) / 1024)
    cpu_file = experiment / "meta" / "phase_cpu_times.json"
    if cpu_file.exists():
        row["phase_cpu_s"] = json.loads(cpu_file.read_text())
    phases_file = experiment / "meta" / "phase_times.json"
    if phases_file.exists():
        phases = json.loads(phases_file.read_text())
        row["phases_s"] = phases
        if "wall_s" in row:
            row["startup_and_rest_s"] = row["wall_s"] - sum(phases.values())
    if experiment.exists():
        row["disk_bytes"] = disk_written(experiment)
    if code != 0:
        row["error"] = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
    return row


def save_rows(
    json_path: Path, md_path: Path | None, rows: list[dict[str, Any]], notes: list[str] | None = None
) -> None:
    """Add ``rows`` to the JSON file (replacing earlier rows of the same config and trunk) and
    ``notes`` to its notes."""
    old = json.loads(json_path.read_text()) if json_path.exists() else {"runs": []}
    old["notes"] = old.get("notes", []) + [note for note in notes or [] if note not in old.get("notes", [])]
    old["machine"] = machine()
    new_keys = {(row["config"], row["trunk"]) for row in rows}
    old["runs"] = [r for r in old["runs"] if (r["config"], r["trunk"]) not in new_keys] + rows
    json_path.write_text(json.dumps(old, indent=1) + "\n")
    if md_path:
        md_path.write_text(markdown_table(old))


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the generated trees (generate.py)")
    parser.add_argument("--out", type=Path, required=True, help="root experiment folder for the runs")
    parser.add_argument("--datasets", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--configs", nargs="+", default=["ms"], help="methods: " + ", ".join(CONFIGS["cub"]))
    parser.add_argument("--trunk", choices=["published", "light"], default="published")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="append the rows to this JSON file")
    parser.add_argument("--md", type=Path, help="write the table of the JSON file's rows here")
    parser.add_argument("--note", action="append", default=[], help="a note for the table (repeatable)")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="before each run (with --collect: for each collected row, again), the same command "
        "with --estimate: its projection goes into the row",
    )
    parser.add_argument(
        "--collect", action="store_true", help="run nothing: collect the rows of runs already in --out"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rehearsal_torch_home_") as torch_home:
        env = dict(os.environ, TORCH_HOME=torch_home)
        if args.trunk == "published" and (args.estimate or not args.collect):
            write_random_weights(Path(torch_home))
        for dataset in args.datasets:
            for method in args.configs:
                name = CONFIGS[dataset].get(method)
                if name is None or (args.trunk == "light" and method not in LIGHT_METHODS):
                    continue
                row = {"dataset": dataset, "method": method, "iterations": args.iterations}
                if args.collect:
                    timing = args.out / f".{name}_{args.trunk}.time"
                    if not timing.exists() or not timing.read_text().strip():
                        continue  # not run, or still running
                    row.update(collect(name, args))
                    if args.estimate:  # projected (again) after the run, on the same machine
                        row["estimate"] = estimate_first(name, args, env)
                else:
                    start = time.perf_counter()
                    row.update(run_one(name, args, env))
                    print(f"   exit {row['exit_code']} after {time.perf_counter() - start:.0f} s", flush=True)
                rows.append(row)
                if args.json:
                    save_rows(
                        args.json, args.md, [row], args.note
                    )  # after every run: an interrupted rehearsal keeps its rows
    return 0 if all(row["exit_code"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
