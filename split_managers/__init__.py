"""Split managers: which samples train, validate and test, by name from the registry.

``MLRCSplitManager`` (the MLRC protocol), ``ClassDisjointSplitManager``, ``IndexSplitManager``,
``ClosedSetSplitManager`` and ``PredefinedSplitManager``; :func:`split_manifest` records a split.
"""

from split_managers.base import SplitManager, SplitSchemes
from split_managers.closed_set import ClosedSetSplitManager
from split_managers.index import ClassDisjointSplitManager, IndexSplitManager
from split_managers.manifest import split_hash, split_manifest
from split_managers.mlrc import MLRCSplitManager
from split_managers.partitioned import PartitionedSplitManager
from split_managers.predefined import PredefinedSplitManager

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
