"""dmlbench: a reproducible experiment runner for deep metric learning (MLRC protocol)."""

__version__ = "0.1.0"
