"""Command line: known flags (parse), config assembly from category files + overrides
(config_assembly), the experiment folder's state (folder_state), and dispatch; ``main`` (entry)
is the entry point of ``python run.py``, ``python -m dmlbench`` and ``dmlbench``.

Every ``--key value`` that is not a known flag overrides the config (values are YAML; key
suffixes ``~OVERRIDE~``, ``~APPLY~N``, ``~SWAP~N``, ``~DELETE~``/``~REMOVE~`` work as in
powerful-benchmarker). Problems with the input print one line and exit with code 2.
"""

from dmlbench.cli.config_assembly import apply_overrides, default_configs, reproduced_configs
from dmlbench.cli.dispatch import run
from dmlbench.cli.entry import main
from dmlbench.cli.parse import build_parser

__all__ = ["apply_overrides", "build_parser", "default_configs", "main", "reproduced_configs", "run"]
