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


def search_drill(kills: int, seed: int, work: Path) -> dict:
    """Kill a search ``kills`` times during its start-up (from its folder's first appearance to its
    first trial's folder, as timed on an uninterrupted search), rerun the same command after each,
    finish it, and compare what it proposed and found with the uninterrupted search."""
    rng = random.Random(seed + 1)
    data = work / "datasets"
    straight, killed = work / "search_straight", work / "search_killed"
    started = time.time()
    process = subprocess.Popen(
        search_command(straight, data), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    appeared = state = first_trial = None
    while process.poll() is None:
        now = time.time() - started
        if appeared is None and (straight / "search").exists():
            appeared = now
        if state is None and (straight / "search" / "trials").exists():
            state = now
        if first_trial is None and (straight / "search" / "trials" / "trial_0000").exists():
            first_trial = now
        time.sleep(0.02)
    if process.returncode != 0:
        raise SystemExit(
            f"search failed ({process.returncode}): {process.stderr.read().strip().splitlines()[-1:]}"
        )
    straight_seconds = time.time() - started
    appeared = appeared or 0.5
    first_trial = first_trial or straight_seconds
    state = state or appeared
    events = []
    for index in range(kills):
        # three kills in four while the search writes its state (trials/ made, first trial not yet),
        # the fourth anywhere from the folder's first appearance
        low = (appeared if index % 4 == 3 else state) - 0.3
        delay = rng.uniform(max(0.2, low), first_trial + 0.3)
        sent = signal.SIGTERM if index % 2 else signal.SIGKILL
        process = subprocess.Popen(
            search_command(killed, data),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            process.wait(timeout=delay)
            outcome = f"finished first (exit {process.returncode})"
        except subprocess.TimeoutExpired:
            process.send_signal(sent)
            process.wait()
            trials = killed / "search" / "trials"
            saved = sorted(p.name for p in trials.iterdir()) if trials.is_dir() else []
            outcome = (
                f"{sent.name} (exit {process.returncode}); trials/ held: {', '.join(saved) or 'nothing'}"
            )
        events.append({"delay_s": round(delay, 2), "outcome": outcome})
    final = subprocess.run(search_command(killed, data), cwd=REPO, capture_output=True, text=True)
    if final.returncode != 0:
        return {
            "kills": kills,
            "events": events,
            "identical": False,
            "failure": final.stderr.strip().splitlines()[-1:],
            "temp_files_left": [],
            "straight_seconds": round(straight_seconds, 1),
            "window_s": [round(appeared, 2), round(state, 2), round(first_trial, 2)],
        }
    return {
        "kills": kills,
        "events": events,
        "identical": proposals(killed) == proposals(straight),
        "proposals": proposals(straight)["trials"],
        "temp_files_left": [str(p) for p in killed.rglob("*.tmp")],
        "straight_seconds": round(straight_seconds, 1),
        "window_s": [round(appeared, 2), round(state, 2), round(first_trial, 2)],
    }


def search_markdown(outcome: dict) -> list[str]:
    lines = [
        "",
        "## Search start-up kills",
        "",
        f"- kills during start-up (SIGKILL and SIGTERM alternately, each followed by the same command): {outcome['kills']}",
        f"- start-up of the uninterrupted search (folder made, trials/ made, first trial folder): {outcome['window_s']} s "
        f"of {outcome['straight_seconds']} s",
        f"- proposals and results identical to the uninterrupted search: **{outcome['identical']}**",
        f"- temp files left: {len(outcome['temp_files_left'])}",
    ]
    if outcome.get("failure"):
        lines.append(f"- the final rerun failed: {outcome['failure']}")
    for trial, parameters in (outcome.get("proposals") or {}).items():
        lines.append(f"- {trial}: {parameters}")
    lines += ["", "| attempt | killed after (s) | outcome |", "|---|---|---|"]
    for index, event in enumerate(outcome["events"], 1):
        lines.append(f"| {index} | {event['delay_s']} | {event['outcome']} |")
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
        "--search_kills", type=int, default=4, help="kills of a search during its start-up (0: none)"
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
