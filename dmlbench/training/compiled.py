"""``compile_models``: the training forward of trunk and embedder through ``torch.compile``.

Off by default. ``true`` uses the default backend (inductor; on CPU it needs a C++ compiler), a
string names another backend (``aot_eager``, ``cudagraphs``, ...). Only the training forward is
compiled: the compiled modules share their parameters with the originals, which checkpoints,
validation and the test use unchanged. Miners, losses and plugins run eagerly (their shapes depend
on the data, e.g. the number of mined pairs).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from dmlbench.errors import ConfigError


def compiled_models(models: dict[str, nn.Module], option: Any) -> dict[str, nn.Module]:
    """``models`` with trunk and embedder compiled when ``option`` asks for it."""
    if option in (None, False):
        return dict(models)
    if option is not True and not isinstance(option, str):
        raise ConfigError(
            f"compile_models: expected false, true or a torch.compile backend name, got {option!r}"
        )
    kwargs: dict[str, Any] = {} if option is True else {"backend": option}
    if option not in (True, *torch._dynamo.list_backends(exclude_tags=())):
        raise ConfigError(
            f"compile_models: unknown backend {option!r}; choices: true (inductor), "
            f"{', '.join(torch._dynamo.list_backends(exclude_tags=()))}"
        )
    return {
        name: cast(nn.Module, torch.compile(module, **kwargs)) if name in ("trunk", "embedder") else module
        for name, module in models.items()
    }
