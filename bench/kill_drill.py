"""Kill/resume drill: SIGKILL a small training run N times at random moments, resume it after
each kill, and compare its final test numbers with those of an uninterrupted run; then kill a
small search during its start-up (SIGKILL and SIGTERM, from the first write to its first trial)
and compare the finished search's proposals and results with an uninterrupted search's.

    python bench/kill_drill.py --kills 5 --search_kills 4 --seed 0 --out bench/results/kill_drill.md

Each attempt starts the run (the first time) or resumes it (``--resume_training latest``) in a
subprocess and kills it after a random delay (uniform in [min_delay, max_delay] seconds); an
attempt that finishes before its kill counts as a run to completion. After N kills the run is
resumed to the end. The drill passes when every resumed report equals the uninterrupted one
(trained, separated and concatenated numbers) and no temp file is left behind.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset",
    "{DemoShapes: {num_classes: 16, images_per_class: 8}}",
    "--split_manager",
    "{MLRCSplitManager: {num_training_partitions: 2, num_training_sets: 2}}",
    "--num_epochs_train",
    "4",
    "--iterations_per_epoch",
    "3",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
]


SEARCH = [
    "--reproduce_results",
    str(REPO / "exp_configs" / "demo"),
    "--merge_argparse_when_resuming",
    "--dataset~APPLY~2",
    "{num_classes: 16, images_per_class: 8}",
    "--split_manager~APPLY~2",
    "{num_training_partitions: 2, num_training_sets: 2}",
    "--num_epochs_train",
    "1",
    "--iterations_per_epoch",
    "2",
    "--save_interval",
    "1",
    "--batch_size",
    "16",
    "--check_untrained_accuracy",
    "false",
    "--loss_funcs~APPLY~3",
    "{alpha~LOG_BAYESIAN~: [0.01, 100]}",
    "--bayes_opt_iters",
    "3",
    "--sobol_trials",
    "2",
]


def command(root: Path, data: Path, resume: bool) -> list[str]:
    base = [sys.executable, str(REPO / "run.py")]
    where = ["--experiment_name", "drill", "--root_experiment_folder", str(root), "--dataset_root", str(data)]
    return base + (where + ["--resume_training", "latest"] if resume else RUN + where)


def run_to_end(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")


def where_killed(root: Path) -> str:
    """What the killed run had saved: each fold's latest epoch, or the files of a partial start."""
    import torch

    folder = root / "drill"
    if not folder.exists():
        return "nothing written yet"
    saved = []
    for latest in sorted(folder.glob("*/checkpoints/latest.pt")):
        state = torch.load(latest, weights_only=True)["state"]
        saved.append(
            f"{latest.parent.parent.name[-1]}: epoch {state['epoch']}{' (done)' if state['finished'] else ''}"
        )
    return "; ".join(saved) or "configs only (partial start)"


def results(root: Path) -> dict:
    return json.loads((root / "drill" / "meta" / "report.json").read_text())["results"]


def drill(kills: int, seed: int, min_delay: float, max_delay: float, work: Path) -> dict:
    rng = random.Random(seed)
    data = work / "datasets"
    straight, killed = work / "straight", work / "killed"
    started = time.time()
    run_to_end(command(straight, data, resume=False))
    straight_seconds = time.time() - started
    max_delay = max_delay if max_delay > 0 else max(min_delay + 1.0, 0.9 * straight_seconds)
    events = []
    done = 0
    while done < kills:
        resume = (killed / "drill").exists()
        delay = rng.uniform(min_delay, max_delay)
        process = subprocess.Popen(
            command(killed, data, resume),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            process.wait(timeout=delay)
            events.append(
                {
                    "resume": resume,
                    "delay_s": round(delay, 2),
                    "outcome": f"finished (exit {process.returncode})",
                }
            )
            if process.returncode != 0:
                raise SystemExit(f"attempt failed: {process.stderr.read().strip().splitlines()[-1:]}")
            if (killed / "drill" / "meta" / "report.json").exists():
                shutil.rmtree(
                    killed
                )  # finished before the kill: start over so that every kill lands in a run
            continue
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            done += 1
            events.append(
                {
                    "resume": resume,
                    "delay_s": round(delay, 2),
                    "outcome": f"SIGKILL; saved: {where_killed(killed)}",
                }
            )
    if (killed / "drill").exists():
        run_to_end(command(killed, data, resume=True))
    else:
        run_to_end(command(killed, data, resume=False))
    temps = [str(p) for p in killed.rglob("*.tmp")]
    same = results(killed) == results(straight)
    return {
        "kills": kills,
        "seed": seed,
        "events": events,
        "identical": same,
        "temp_files_left": temps,
        "straight_seconds": round(straight_seconds, 1),
        "trained_test": results(straight)["test"]["trained"]["separated"]["mean"],
        "resumed_trained_test": results(killed)["test"]["trained"]["separated"]["mean"],
    }


#: What a search's start writes, in order (relative to its folder): each kill lands just after one.
STARTUP_STEPS = (".", "trials", "trials/ax_state.json", "trials/search.json", "configs", "trials/trial_0000")


def search_command(root: Path, data: Path) -> list[str]:
    """The search's command: the same to start it and to continue it."""
    where = [
        "--experiment_name",
        "search",
        "--root_experiment_folder",
        str(root),
        "--dataset_root",
        str(data),
    ]
    return [sys.executable, str(REPO / "run.py"), *SEARCH, *where]


def proposals(root: Path) -> dict:
    """Each trial's Ax parameters and objective, from the trial folders and the search report."""
    folder = root / "search"
    trials = {
        path.parent.parent.name: json.loads(path.read_text())["ax_parameters"]
        for path in sorted(folder.glob("trials/trial_*/configs/trial_parameters.json"))
    }
    report = json.loads((folder / "meta" / "report.json").read_text())
    return {"trials": trials, "best": report.get("best_trial"), "rows": report.get("trials")}


def kill_after_step(root: Path, data: Path, step: str, sent: signal.Signals, extra_s: float) -> str:
    """Start the search in ``root``, wait until it has written ``step`` (a path relative to its
    folder), wait ``extra_s`` more, send ``sent``; -> what happened."""
    process = subprocess.Popen(
        search_command(root, data), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    while process.poll() is None and not (root / "search" / step).exists():
        time.sleep(0.005)
    time.sleep(extra_s)
    if process.poll() is not None:
        return f"finished first (exit {process.returncode})"
    process.send_signal(sent)
    process.wait()
    trials = root / "search" / "trials"
    held = sorted(p.name for p in trials.iterdir()) if trials.is_dir() else []
    return f"{sent.name} (exit {process.returncode}); trials/ held: {', '.join(held) or 'nothing'}"


def search_drill(kills: int, seed: int, work: Path) -> dict:
    """``kills`` searches, each killed once during its start-up just after one of its steps
    (:data:`STARTUP_STEPS`; SIGKILL at once, SIGTERM a random 0-0.3 s later, alternately), then rerun
    with the same command to the end; each must propose and find exactly what an uninterrupted
    search does, and leave no temp file."""
    rng = random.Random(seed + 1)
    data = work / "datasets"
    straight = work / "search_straight"
    started = time.time()
    result = subprocess.run(search_command(straight, data), cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"search failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    straight_seconds = time.time() - started
    expected = proposals(straight)
    events, identical, temps = [], True, []
    for index in range(kills):
        root = work / f"search_killed_{index}"
        step = STARTUP_STEPS[index % len(STARTUP_STEPS)]
        sent = signal.SIGTERM if index % 2 else signal.SIGKILL
        extra = 0.0 if index % 2 == 0 else rng.uniform(0.0, 0.3)  # SIGKILL at once: e.g. between two writes
        outcome = kill_after_step(root, data, step, sent, extra)
        final = subprocess.run(search_command(root, data), cwd=REPO, capture_output=True, text=True)
        same = final.returncode == 0 and proposals(root) == expected
        identical = identical and same
        temps += [str(p) for p in root.rglob("*.tmp")]
        rerun = (
            "rerun: same proposals and results" if same else f"rerun: DIFFERENT (exit {final.returncode}) "
        )
        if final.returncode != 0:
            rerun += " ".join(final.stderr.strip().splitlines()[-1:])
        events.append({"after": step, "outcome": f"{outcome}; {rerun}"})
    return {
        "kills": kills,
        "events": events,
        "identical": identical,
        "proposals": expected["trials"],
        "temp_files_left": temps,
        "straight_seconds": round(straight_seconds, 1),
    }


def search_markdown(outcome: dict) -> list[str]:
    lines = [
        "",
        "## Search start-up kills",
        "",
        f"- searches killed once during their start-up, each just after one of its steps (SIGKILL at once, "
        f"SIGTERM 0-0.3 s later, alternately), then rerun with the same command: {outcome['kills']}",
        f"- uninterrupted search: {outcome['straight_seconds']} s",
        f"- every rerun proposed and found exactly what the uninterrupted search did: **{outcome['identical']}**",
        f"- temp files left: {len(outcome['temp_files_left'])}",
    ]
    for trial, parameters in (outcome.get("proposals") or {}).items():
        lines.append(f"- {trial}: {parameters}")
    lines += ["", "| search | killed just after | outcome |", "|---|---|---|"]
    for index, event in enumerate(outcome["events"], 1):
        lines.append(f"| {index} | {event['after']} | {event['outcome']} |")
    return lines


def markdown(outcome: dict, argv: list[str]) -> str:
    lines = [
        "# Kill/resume drill",
        "",
        f"Command: `python bench/kill_drill.py {' '.join(argv)}`",
        "",
        f"- kills (SIGKILL at random moments, each followed by a resume): {outcome['kills']} (seed {outcome['seed']})",
        f"- uninterrupted run: {outcome['straight_seconds']} s",
        f"- final report identical to the uninterrupted run: **{outcome['identical']}**",
        f"- temp files left: {len(outcome['temp_files_left'])}",
        f"- trained test (separated mean), uninterrupted: {outcome['trained_test']}",
        f"- trained test (separated mean), killed and resumed: {outcome['resumed_trained_test']}",
        "",
        "| attempt | resumed | killed after (s) | outcome |",
        "|---|---|---|---|",
    ]
    for index, event in enumerate(outcome["events"], 1):
        lines.append(f"| {index} | {event['resume']} | {event['delay_s']} | {event['outcome']} |")
    if outcome.get("search") is not None:
        lines += search_markdown(outcome["search"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min_delay", type=float, default=2.0, help="seconds (the interpreter and torch start first)"
    )
    parser.add_argument(
        "--max_delay",
        type=float,
        default=0.0,
        help="seconds; 0 (default): 0.9 x the uninterrupted run's time",
    )
    parser.add_argument(
        "--search_kills", type=int, default=6, help="kills of a search during its start-up (0: none)"
    )
    parser.add_argument("--out", type=Path, help="write the outcome as markdown here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kill_drill_") as work:
        outcome = drill(args.kills, args.seed, args.min_delay, args.max_delay, Path(work))
        outcome["search"] = (
            search_drill(args.search_kills, args.seed, Path(work)) if args.search_kills else None
        )
    text = markdown(outcome, list(sys.argv[1:] if argv is None else argv))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    passed = [outcome, *([outcome["search"]] if outcome["search"] else [])]
    return 0 if all(o["identical"] and not o["temp_files_left"] for o in passed) else 1


if __name__ == "__main__":
    sys.exit(main())
