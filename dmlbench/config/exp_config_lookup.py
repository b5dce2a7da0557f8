"""Where ``--reproduce_results NAME`` finds its configs.

Rule (README.md, "Running experiments"): ``NAME`` as a path (a saved experiment or an exp_configs/
entry) if it holds a ``configs/`` folder; else ``./exp_configs/NAME``; else the exp_configs
shipped with dmlbench (``dmlbench/exp_configs/NAME``, the repository's ``exp_configs/``).
``exp_configs/NAME`` given from a folder without that path is looked up by ``NAME`` the same way.
"""

from __future__ import annotations

from pathlib import Path

from dmlbench.errors import ConfigError

SHIPPED_EXP_CONFIGS = Path(__file__).resolve().parent.parent / "exp_configs"


def shipped_names() -> list[str]:
    """The exp_configs entries shipped with dmlbench."""
    if not SHIPPED_EXP_CONFIGS.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_EXP_CONFIGS.iterdir() if (p / "configs").is_dir())


def find_exp_config(argument: str) -> Path:
    """The folder holding ``configs/`` for ``--reproduce_results argument`` (rule above)."""
    given = Path(argument).expanduser()
    if (given / "configs").is_dir():
        return given
    if given.is_file():
        raise ConfigError(
            f"--reproduce_results {argument}: that is a file; give the folder that holds configs/ "
            "(an exp_configs/ entry such as demo, or a saved experiment)"
        )
    candidates = [given]
    if len(given.parts) == 1 or (len(given.parts) == 2 and given.parts[0] == "exp_configs"):
        name = given.name
        candidates += [Path("exp_configs") / name, SHIPPED_EXP_CONFIGS / name]
        for candidate in candidates[1:]:
            if (candidate / "configs").is_dir():
                return candidate
    looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
    if given.is_dir():
        raise ConfigError(
            f"--reproduce_results {argument}: no configs/ folder there (expected "
            f"{given / 'configs' / 'config_general.yaml'} and friends)"
        )
    names = shipped_names()
    shipped = (
        (
            f"; {len(names)} shipped in {SHIPPED_EXP_CONFIGS}: {', '.join(names[:8])}"
            f"{', ...' if len(names) > 8 else ''}"
        )
        if names
        else ""
    )
    raise ConfigError(f"--reproduce_results {argument}: not found (looked in {looked}){shipped}")
