"""``python -m dmlbench ...``: the same command as ``dmlbench ...`` and ``python run.py ...``."""

import sys

from dmlbench.cli import main

sys.exit(main())
