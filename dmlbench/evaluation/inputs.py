"""Turning user inputs (numpy arrays, torch tensors, per-sample structures) into checked tensors.

"Per-sample inputs" are what a custom similarity receives: a tensor whose first dimension indexes
samples, or a tuple/list/dict of such tensors that share that first dimension.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dmlbench.errors import ConfigError, DatasetError


def choose_device(device: str | torch.device | None, *tensors: Any) -> torch.device:
    """``device`` if given; else the device of the first CUDA tensor among ``tensors``; else
    CUDA when available; else the CPU."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ConfigError(f"device {device!r} is not a torch device (try 'cpu' or 'cuda')") from error
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available; use device='cpu'")
        return chosen
    for tensor in tensors:
        for leaf in _leaves(tensor):
            if isinstance(leaf, torch.Tensor) and leaf.is_cuda:
                return leaf.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _leaves(inputs: Any) -> list[Any]:
    if isinstance(inputs, dict):
        return [leaf for value in inputs.values() for leaf in _leaves(value)]
    if isinstance(inputs, (tuple, list)):
        return [leaf for value in inputs for leaf in _leaves(value)]
    return [inputs]


def as_float_matrix(embeddings: Any, name: str, device: torch.device) -> torch.Tensor:
    """A float32 [N, D] tensor on ``device``; non-finite values are a :class:`DatasetError`."""
    tensor = _as_tensor(embeddings, name)
    if tensor.ndim != 2:
        raise DatasetError(f"{name} must be a 2-D array [samples, dims], got shape {tuple(tensor.shape)}")
    if not (
        tensor.is_floating_point()
        or tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
    ):
        raise DatasetError(f"{name} must hold numbers, got dtype {tensor.dtype}")
    tensor = tensor.to(device=device, dtype=torch.float32)
    finite = torch.isfinite(tensor).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        first = int((~finite).nonzero()[0, 0])
        raise DatasetError(
            f"{name} has {bad} row(s) with NaN or infinite values (first: row {first}); "
            "was the model diverging?"
        )
    return tensor


def _as_tensor(values: Any, name: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{name}: cannot be read as an array ({error})") from error
    if array.dtype == object:
        raise DatasetError(f"{name}: ragged or non-numeric array")
    return torch.from_numpy(np.ascontiguousarray(array))


def as_label_vectors(
    reference_labels: Any, query_labels: Any | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """int64 label vectors for the references (and the queries), on ``device``.

    Integer labels are kept; any other labels (strings such as In-Shop item ids, floats holding
    whole numbers) are mapped to integers jointly, so that equal labels stay equal across sets.
    """
    reference = _label_array(reference_labels, "labels")
    query = None if query_labels is None else _label_array(query_labels, "query_labels")
    if not _integer_kind(reference) or (query is not None and not _integer_kind(query)):
        joined = (
            reference if query is None else np.concatenate([reference.astype(object), query.astype(object)])
        )
        try:
            _, codes = np.unique(
                joined.astype(str) if joined.dtype == object else joined, return_inverse=True
            )
        except TypeError as error:
            raise DatasetError(f"labels cannot be compared with each other ({error})") from error
        reference, query = codes[: len(reference)], (None if query is None else codes[len(reference) :])

    def as_torch(array: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.int64), device=device)

    return as_torch(reference), (None if query is None else as_torch(query))


def _label_array(labels: Any, name: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DatasetError(f"{name} must be a 1-D array, one label per sample; got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise DatasetError(f"{name} contain NaN or infinite values")
        if np.all(array == np.round(array)):
            array = array.astype(np.int64)
    return array


def _integer_kind(array: np.ndarray) -> bool:
    return array.dtype.kind in "iub"


def row_count(inputs: Any) -> int:
    """Number of samples in per-sample inputs (all leaves must agree)."""
    counts = {len(leaf) for leaf in _leaves(inputs)}
    if len(counts) != 1:
        raise DatasetError(f"per-sample inputs disagree on the number of samples: {sorted(counts)}")
    return counts.pop()


def select_rows(inputs: Any, rows: slice | torch.Tensor) -> Any:
    """The same structure with only ``rows`` (a slice or an index tensor) of every leaf."""
    if isinstance(inputs, dict):
        return {key: select_rows(value, rows) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(select_rows(value, rows) for value in inputs)
    return inputs[rows]


def to_device(inputs: Any, device: torch.device) -> Any:
    """Per-sample inputs with every numpy/torch leaf as a tensor on ``device``."""
    if isinstance(inputs, dict):
        return {key: to_device(value, device) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(value, device) for value in inputs)
    if isinstance(inputs, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(inputs)).to(device)
    if isinstance(inputs, torch.Tensor):
        return inputs.detach().to(device)
    return inputs
