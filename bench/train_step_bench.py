"""Images/s of the runner's real training step against the model-alone bound, in the same run.

The runner's step is ``Trainer._train_epoch`` as a fold runs it: trunk and embedder forward,
miner, loss, backward, the optimizers, the per-part schedulers and the training log (TensorBoard
and the SQLite record store), progress bar included. Batches are synthetic tensors already on the
device (m = 4 images per class), so data loading is out of the measurement (see
``train_throughput.py`` for that). Variants:

  bound           trunk + embedder forward, a trivial loss (mean square), backward, the same
                  optimizers: what the step costs without miner, loss and logging
  runner          the runner's step (loss values read every 10 steps, no per-step sync)
  runner_sync     the same with a host-device sync every step (what the step did before: one
                  ``float(loss)`` per loss per step)
  runner_compile  the runner's step with ``compile_models: true`` (torch.compile, inductor)
  trials_K        (--trials K) K processes running ``runner`` at once on one device: their summed
                  images/s (what ``--trials_per_gpu K`` gives a search); trials_1 beside it

Recipes: ``mlrc`` (BN-Inception, 227 px, batch 32, embedder 128, frozen BatchNorm, RMSprop, the
MLRC recipe) and ``r50`` (ResNet50, 224 px, batch 128, embedder 512, Adam); both with
MultiSimilarityLoss and MultiSimilarityMiner. Random weights (no download).

    python bench/train_step_bench.py --device cuda --out bench/results/train_step_<gpu>.json --trials 2 --compile
    python bench/train_step_bench.py --device cpu --iterations 4 --warmup 2 --out bench/results/train_step_cpu.json

Writes the JSON results and a Markdown table next to it (same name, .md).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmlbench.models.factory import ModelFactory
from dmlbench.records.store import RecordStore
from dmlbench.records.training_log import TrainingLog
from dmlbench.training import step_log
from dmlbench.training import trainer as trainer_module
from dmlbench.training.components import build_losses, build_miners, build_optimization
from dmlbench.training.plugin_set import PluginSet
from dmlbench.training.trainer import Trainer, TrainerSettings

RECIPES: dict[str, dict[str, Any]] = {
    "mlrc": {
        "size": 227,
        "batch": 32,
        "freeze_bn": True,
        "models": {
            "trunk": {"BNInception": {"pretrained": False, "frozen_batchnorm": True}},
            "embedder": {"MLP": {"layer_sizes": [128]}},
        },
        "optimizer": {"RMSprop": {"lr": 1e-6, "weight_decay": 1e-4, "momentum": 0.9}},
    },
    "r50": {
        "size": 224,
        "batch": 128,
        "freeze_bn": False,
        "models": {
            "trunk": {"TorchvisionTrunk": {"name": "resnet50", "pretrained": False}},
            "embedder": {"MLP": {"layer_sizes": [512]}},
        },
        "optimizer": {"Adam": {"lr": 1e-5}},
    },
}
LOSS_AND_MINER = {
    "loss_funcs": {"metric_loss": {"MultiSimilarityLoss": {"alpha": 2, "beta": 50, "base": 0.5}}},
    "mining_funcs": {"tuple_miner": {"MultiSimilarityMiner": {"epsilon": 0.1}}},
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(
    recipe: dict[str, Any],
    device: torch.device,
    iterations: int,
    folder: Path,
    compile_models: bool,
    mixed_precision: str | None,
) -> Trainer:
    torch.manual_seed(0)
    models = {name: m.to(device) for name, m in ModelFactory().build(recipe["models"]).items()}
    config = {**LOSS_AND_MINER, "optimizers": {f"{name}_optimizer": recipe["optimizer"] for name in models}}
    losses = {role: loss.to(device) for role, loss in build_losses(config, {}).items()}
    parts = build_optimization(models, config)
    batch = recipe["batch"]
    images = torch.randn(batch, 3, recipe["size"], recipe["size"], device=device)
    labels = torch.arange(batch // 4, device=device).repeat_interleave(4)
    settings = TrainerSettings(
        num_epochs=1,
        iterations_per_epoch=iterations,
        save_interval=1,
        patience=100,
        device=device,
        seed=0,
        freeze_trunk_batchnorm=recipe["freeze_bn"],
        mixed_precision=mixed_precision,
        compile_models=compile_models,
    )
    log = TrainingLog("bench", folder / "tensorboard", RecordStore(folder / "meta"))
    return Trainer(
        models,
        losses,
        build_miners(config),
        PluginSet([]),
        parts,
        lambda epoch: [(images, labels)] * iterations,
        lambda m, e: {},
        settings,
        folder / "checkpoints",
        on_log=log,
        progress_label="bench",
    )


def time_runner(trainer: Trainer, warmup: int, iterations: int, read_every: int) -> float:
    """Seconds per step of ``Trainer._train_epoch`` (the warm-up epoch is not timed)."""
    original = trainer_module.LossBuffer
    trainer_module.LossBuffer = functools.partial(step_log.LossBuffer, every=read_every)
    try:
        trainer.settings.iterations_per_epoch = warmup
        trainer._train_epoch(1)
        synchronize(trainer.settings.device)
        trainer.settings.iterations_per_epoch = iterations
        start = time.perf_counter()
        trainer._train_epoch(2)
        synchronize(trainer.settings.device)
        return (time.perf_counter() - start) / iterations
    finally:
        trainer_module.LossBuffer = original


def time_bound(trainer: Trainer, warmup: int, iterations: int) -> float:
    """Seconds per step of forward + mean-square loss + backward + the same optimizers."""
    images, labels = trainer.loader_factory(1)[0]
    trainer._set_train_mode()

    def step() -> None:
        for part in trainer.parts.values():
            part.optimizer.zero_grad(set_to_none=True)
        _, embeddings = trainer.forward(images)
        embeddings.pow(2).mean().backward()
        for part in trainer.parts.values():
            part.optimizer.step()

    for _ in range(warmup):
        step()
    synchronize(trainer.settings.device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(trainer.settings.device)
    return (time.perf_counter() - start) / iterations


def measure(name: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    recipe, device = (
        {**RECIPES[name], **({"size": args.size} if args.size else {})},
        torch.device(args.device),
    )
    with tempfile.TemporaryDirectory() as folder:
        trainer = make_trainer(
            recipe, device, args.iterations, Path(folder), variant == "runner_compile", args.mixed_precision
        )
        if variant == "bound":
            seconds = time_bound(trainer, args.warmup, args.iterations)
        else:
            seconds = time_runner(
                trainer, args.warmup, args.iterations, 1 if variant == "runner_sync" else 10
            )
        trainer.on_log.close()
    return {
        "recipe": name,
        "variant": variant,
        "batch": recipe["batch"],
        "seconds_per_step": seconds,
        "images_per_s": recipe["batch"] / seconds,
    }


def measure_trials(name: str, trials: int, args: argparse.Namespace) -> dict[str, Any]:
    """``trials`` processes each timing ``runner`` at once; their images/s summed."""
    command = [
        sys.executable,
        __file__,
        "--single",
        name,
        "--device",
        args.device,
        "--iterations",
        str(args.iterations),
        "--warmup",
        str(args.warmup),
    ] + (["--size", str(args.size)] if args.size else [])
    if args.mixed_precision:
        command += ["--mixed_precision", args.mixed_precision]
    env = dict(os.environ)
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // trials))
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(trials)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_s"] for p in processes]
    return {
        "recipe": name,
        "variant": f"trials_{trials}",
        "batch": RECIPES[name]["batch"],
        "images_per_s": sum(rates),
        "per_trial": rates,
    }


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs visible, torch threads {torch.get_num_threads()}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Training step vs model-alone bound ({results['machine']})",
        "",
        f"Command: `{results['command']}`",
        "",
        f"torch {results['torch']}, device {results['device']}, mixed precision {results['mixed_precision']}, "
        f"image size {results['size'] or 'as the recipe'}, "
        f"{results['iterations']} timed steps after {results['warmup']} warm-up steps.",
        "",
        "| recipe | variant | batch | images/s | % of bound |",
        "|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        bound = next(
            r["images_per_s"]
            for r in results["rows"]
            if r["recipe"] == row["recipe"] and r["variant"] == "bound"
        )
        lines.append(
            f"| {row['recipe']} | {row['variant']} | {row['batch']} | {row['images_per_s']:.1f} | "
            f"{100 * row['images_per_s'] / bound:.0f}% |"
        )
    return "\n".join(lines + ["", results.get("note", ""), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--mixed_precision", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--size", type=int, help="image size instead of the recipe's (small CPU runs)")
    parser.add_argument("--compile", action="store_true", help="also time runner_compile (torch.compile)")
    parser.add_argument("--trials", type=int, default=0, help="also time K concurrent trial processes (mlrc)")
    parser.add_argument("--single", choices=list(RECIPES), help=argparse.SUPPRESS)  # a --trials child
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    if args.single:
        print(json.dumps(measure(args.single, "runner", args)))
        return
    variants = ["bound", "runner", "runner_sync"] + (["runner_compile"] if args.compile else [])
    results = {
        "machine": machine(args.device),
        "device": args.device,
        "torch": torch.__version__,
        "mixed_precision": args.mixed_precision,
        "size": args.size,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "command": "python " + " ".join(sys.argv),
        "rows": [],
        "note": args.note,
    }
    for name in args.recipes:
        jobs = [functools.partial(measure, name, variant, args) for variant in variants]
        if args.trials > 1:
            jobs += [
                functools.partial(measure_trials, name, 1, args),
                functools.partial(measure_trials, name, args.trials, args),
            ]
        for job in jobs:
            results["rows"].append(job())
            print(json.dumps(results["rows"][-1]), flush=True)
            if args.out:  # written after every row: a long run cut short keeps what it measured
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
                args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
