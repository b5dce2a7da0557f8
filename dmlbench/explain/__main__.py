"""``python -m dmlbench.explain``: see :mod:`dmlbench.explain.command`."""

import sys

from dmlbench.explain.command import main

if __name__ == "__main__":
    sys.exit(main())
