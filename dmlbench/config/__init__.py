"""The configuration system: YAML categories, merge semantics, special keys, search markers.

- :mod:`~dmlbench.config.yaml_io`: safe YAML reading/writing (``1e-6`` is a float, atomic writes);
- :mod:`~dmlbench.config.merge`: recursive merge and the ``~OVERRIDE~``, ``~APPLY~N``,
  ``~SWAP~N``, ``~DELETE~``/``~REMOVE~`` suffixes (documented there with examples);
- :mod:`~dmlbench.config.files`: ``<dir>/<category>/<name>.yaml`` lists such as
  ``[default, with_cars196]``;
- :mod:`~dmlbench.config.overrides`: ``--key value`` command-line overrides;
- :mod:`~dmlbench.config.experiment_files`: an experiment's ``configs/`` folder (read, write,
  hash, command line, split manifest);
- :mod:`~dmlbench.config.defaults`: the built-in defaults (each category's ``default.yaml``);
- :mod:`~dmlbench.config.checks`: checks of a resolved config before anything is written.

The search markers (``~BAYESIAN~`` ...) are read by :mod:`dmlbench.search.space`.

Pure Python: nothing here imports torch.
"""

from dmlbench.config.files import load_category, parse_file_list
from dmlbench.config.keys import CATEGORIES
from dmlbench.config.merge import combine_overrides, merge_configs
from dmlbench.config.overrides import parse_overrides
from dmlbench.config.yaml_io import dump_yaml, load_yaml_file, parse_value, write_yaml_atomic

__all__ = [
    "CATEGORIES",
    "combine_overrides",
    "dump_yaml",
    "load_category",
    "load_yaml_file",
    "merge_configs",
    "parse_file_list",
    "parse_overrides",
    "parse_value",
    "write_yaml_atomic",
]
