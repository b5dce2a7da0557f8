"""Entry point: ``python run.py ...`` (see ``python run.py --help`` and README.md)."""

import sys

from dmlbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
