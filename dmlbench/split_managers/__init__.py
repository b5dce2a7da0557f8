"""Split managers: which samples train, validate and test, by name from the registry.

``MLRCSplitManager`` (the MLRC protocol), ``ClassDisjointSplitManager``, ``IndexSplitManager``,
``ClosedSetSplitManager`` and ``PredefinedSplitManager``; :func:`split_manifest` records a split.
"""

from dmlbench.data.split_manifest import split_hash, split_manifest
from dmlbench.split_managers.base import SplitManager, SplitSchemes
from dmlbench.split_managers.closed_set import ClosedSetSplitManager
from dmlbench.split_managers.index import ClassDisjointSplitManager, IndexSplitManager
from dmlbench.split_managers.mlrc import MLRCSplitManager
from dmlbench.split_managers.partitioned import PartitionedSplitManager
from dmlbench.split_managers.predefined import PredefinedSplitManager

__all__ = [
    "ClassDisjointSplitManager",
    "ClosedSetSplitManager",
    "IndexSplitManager",
    "MLRCSplitManager",
    "PartitionedSplitManager",
    "PredefinedSplitManager",
    "SplitManager",
    "SplitSchemes",
    "split_hash",
    "split_manifest",
]
