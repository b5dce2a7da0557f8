"""Where a search keeps its files. Every folder is found by its exact name, never by a glob
(powerful-benchmarker's ``trial4*`` also matched trials 40-49)::

    <experiment>/configs/                     the search's config (with its markers), command_line.txt
    <experiment>/trials/search.json           search settings fixed at the start (checked on resume)
    <experiment>/trials/ax_state.json         Ax client snapshot, rewritten atomically after each change
    <experiment>/trials/trial_0000/           one sub-experiment per trial (configs/, meta/, folds)
    <experiment>/trials/stale/                folders that no longer match Ax's record of a trial
    <experiment>/reproductions/reproduction_0000/   retrainings of the best trial
    <experiment>/meta/report.{md,json}, best_parameters.yaml, plots/search_trace.png, csv/trials.csv
    <job folder>/slurm/                       a job's submitit files and Slurm logs (slurm executor)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from dmlbench.config.experiment_files import SEARCH_SETTINGS

#: Result files a job writes (atomically) when it succeeds, relative to its folder.
TRIAL_RESULT = Path("meta") / "trial_result.json"
TEST_RESULT = Path("meta") / "test_result.json"
#: A trial's Ax parameters as given to it (compared with Ax's record on resume).
TRIAL_PARAMETERS = Path("configs") / "trial_parameters.json"
#: A reproduction's origin (best trial and seed).
REPRODUCTION_INFO = Path("configs") / "reproduction.json"
#: Traceback of a failed job.
JOB_ERROR = Path("meta") / "job_error.txt"


def numbered(prefix: str, index: int) -> str:
    """``prefix_0007``: zero-padded to 4 digits (wider past 9999), so names sort and never nest."""
    if index < 0:
        raise ValueError(f"negative index {index}")
    return f"{prefix}_{index:04d}"


@dataclass(frozen=True)
class SearchLayout:
    experiment_dir: Path

    @property
    def config_dir(self) -> Path:
        return self.experiment_dir / "configs"

    @property
    def trials_dir(self) -> Path:
        return self.experiment_dir / "trials"

    @property
    def settings_path(self) -> Path:
        return self.experiment_dir / SEARCH_SETTINGS

    @property
    def ax_state_path(self) -> Path:
        return self.trials_dir / "ax_state.json"

    def trial_dir(self, index: int) -> Path:
        return self.trials_dir / numbered("trial", index)

    @property
    def reproductions_dir(self) -> Path:
        return self.experiment_dir / "reproductions"

    def reproduction_dir(self, index: int) -> Path:
        return self.reproductions_dir / numbered("reproduction", index)

    @property
    def meta_dir(self) -> Path:
        return self.experiment_dir / "meta"

    @staticmethod
    def move_to_free_name(folder: Path, target: Path) -> Path:
        """Rename ``folder`` to ``target`` (``target.1``, ``target.2``, ... if taken)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        candidate, suffix = target, 1
        while candidate.exists():
            candidate = target.with_name(f"{target.name}.{suffix}")
            suffix += 1
        shutil.move(str(folder), str(candidate))
        return candidate

    def set_aside(self, folder: Path, under: Path) -> Path:
        """Move ``folder`` into ``under``, keeping its name (suffixed if taken)."""
        return self.move_to_free_name(folder, under / folder.name)

    def stale_dir(self) -> Path:
        return self.trials_dir / "stale"
