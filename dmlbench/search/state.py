"""A search folder's identity and state: the config hash that a rerun must match, the Ax
state it continues, and the writer lock that keeps one search process per folder."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
from collections.abc import Iterator
from typing import Any

from dmlbench.config.experiment_files import json_sha256
from dmlbench.errors import ConfigError, ExperimentError
from dmlbench.fileio import write_text_atomic
from dmlbench.integrity import corrupt, read_json_object
from dmlbench.search.layout import SearchLayout
from dmlbench.search.optimizer import AxSearch, default_sobol_trials
from dmlbench.search.space import SearchSpace
from dmlbench.writer_lock import LOCK_NAME, acquire, held

#: Config keys about where jobs run, not what they compute (may change between runs).
RUN_PLACEMENT_KEYS = ("slurm", "device", "dataloader_num_workers", "eval_dataloader_num_workers")


def search_config_hash(config: dict[str, dict[str, Any]]) -> str:
    """sha256 of the config without the keys that only place jobs (``RUN_PLACEMENT_KEYS``)."""
    kept = {
        category: {k: v for k, v in (values or {}).items() if k not in RUN_PLACEMENT_KEYS}
        for category, values in config.items()
    }
    return json_sha256(kept)


def top_level_hashes(config: dict[str, dict[str, Any]]) -> dict[str, str]:
    hashes = {}
    for values in config.values():
        for key, value in (values or {}).items():
            if key not in RUN_PLACEMENT_KEYS:
                hashes[key] = json_sha256(value)[:16]
    return hashes


@contextlib.contextmanager
def search_lock(layout: SearchLayout) -> Iterator[None]:
    """One search process per experiment folder: the folder's writer lock
    (:mod:`dmlbench.writer_lock`), which run.py already holds for the whole command; taken here,
    and let go at the end, when a search is started from Python.

    A search refused before its state (``search.json``) is written leaves nothing behind: the
    folders this call made are removed again."""
    missing_parents = [path for path in layout.experiment_dir.absolute().parents if not path.exists()]
    made = [
        *reversed(missing_parents),  # a --root_experiment_folder this call makes, too
        *(path for path in (layout.experiment_dir, layout.trials_dir) if not path.exists()),
    ]
    command_lock = held(layout.experiment_dir)
    lock = command_lock or acquire(layout.experiment_dir, create=True, what="search")
    try:
        layout.trials_dir.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException:
        if not layout.settings_path.exists():
            if command_lock is None:
                lock.release()
            _remove_made(made)
        raise
    finally:
        if command_lock is None:
            lock.release()


def _remove_made(made: list) -> None:
    """Remove what a refused search created: the outermost of the nested paths it made."""
    if made:
        outermost = made[0]
        if outermost.is_dir():
            shutil.rmtree(outermost, ignore_errors=True)
        else:
            outermost.unlink(missing_ok=True)


def sample_values(space: SearchSpace) -> dict[str, Any]:
    """A point of the space (lower bounds, first choices), to validate class names up front."""
    values = {}
    for parameter in space.parameters:
        p = parameter.parameter
        values[p.name] = p.choice_values[0] if p.kind == "choice" else p.lower
    return values


def open_search(
    layout: SearchLayout,
    config: dict[str, dict[str, Any]],
    space: SearchSpace,
    metric: str,
    seed: int,
    sobol_trials: int | None,
    iterations: int,
) -> AxSearch:
    """Create the search's state, or load it after checking that the command still describes it."""
    digest = search_config_hash(config)
    if layout.settings_path.exists():
        saved = read_json_object(
            layout.settings_path,
            "the search's identity is lost: restore the file, or start "
            "the search again under a new --experiment_name",
            required=("config_sha256", "sobol_trials"),
        )
        if saved["config_sha256"] != digest:
            differing = [
                key
                for key in sorted({*saved.get("keys", {}), *top_level_hashes(config)})
                if saved.get("keys", {}).get(key) != top_level_hashes(config).get(key)
            ]
            raise ExperimentError(
                f"{layout.experiment_dir} holds a search with another config (differs in: "
                f"{', '.join(differing) or 'the config'}); rerun its original command to continue it, "
                "or choose a new --experiment_name"
            )
        if sobol_trials is not None and sobol_trials != saved["sobol_trials"]:
            raise ConfigError(
                f"--sobol_trials {sobol_trials}: this search started with {saved['sobol_trials']}; "
                "the generation strategy cannot change mid-search"
            )
        saved_seed = int(saved.get("seed", seed))
        if not layout.ax_state_path.exists():
            if not _trial_folders(layout):  # killed during its start: the start is redone, same seed
                return AxSearch.create(
                    space,
                    metric,
                    saved_seed,
                    saved["sobol_trials"],
                    layout.ax_state_path,
                    layout.experiment_dir.name,
                )
            raise ExperimentError(
                f"{layout.ax_state_path} is missing: the search state is lost; choose a new --experiment_name"
            )
        return load_ax_state(layout, saved_seed)
    if layout.experiment_dir.exists() and any(
        p.name not in ("trials", LOCK_NAME) for p in layout.experiment_dir.iterdir()
    ):
        raise ExperimentError(
            f"{layout.experiment_dir} already holds an experiment that is not a search; "
            "choose another --experiment_name"
        )
    sobol = sobol_trials if sobol_trials is not None else default_sobol_trials(iterations)
    if sobol < 1:
        raise ConfigError(f"--sobol_trials must be >= 1, got {sobol}")
    # Ax's state first, the search's identity last: a start killed between the two writes has no
    # search.json and is simply made again by the same command
    search = AxSearch.create(
        space, metric, seed, sobol, layout.ax_state_path, name=layout.experiment_dir.name
    )
    write_text_atomic(
        layout.settings_path,
        json.dumps(
            {
                "config_sha256": digest,
                "keys": top_level_hashes(config),
                "search_space": space.description(),
                "objective": metric,
                "sobol_trials": sobol,
                "seed": seed,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            },
            indent=1,
        )
        + "\n",
    )
    return search


def _trial_folders(layout: SearchLayout) -> list:
    return [p for p in layout.trials_dir.glob("trial_*") if p.is_dir()] if layout.trials_dir.is_dir() else []


def load_ax_state(layout: SearchLayout, seed: int | None = None) -> AxSearch:
    """The saved Ax state, with the search's ``seed`` (Ax's snapshot does not keep the client's
    seed, which seeds every Bayesian proposal); a damaged file is one line naming it (the trial
    folders stay intact)."""
    path = layout.ax_state_path
    read_json_object(
        path,
        "the optimiser's record is lost: start the search again under a new --experiment_name "
        "(its finished trials' folders and results are kept in this one)",
    )
    try:
        return AxSearch.load(path, seed)
    except Exception as error:  # Ax raises many kinds on a JSON that is valid but not its own
        raise corrupt(
            path,
            f"{type(error).__name__}: {error}",
            "the optimiser's record is unreadable: start the search again under a new --experiment_name",
        ) from None
