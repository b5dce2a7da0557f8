"""compile_models: the compiled training forward trains the same weights as the eager one."""

from __future__ import annotations

import pytest
import torch

from dmlbench.errors import ConfigError
from dmlbench.training.compiled import compiled_models
from tests.training.test_trainer import make_trainer


def test_compiled_forward_trains_like_eager(tmp_path):
    torch._dynamo.reset()
    eager = make_trainer(tmp_path / "eager", num_epochs=1)
    compiled = make_trainer(tmp_path / "compiled", num_epochs=1, compile_models="aot_eager")
    assert compiled.forward_models["trunk"] is not compiled.models["trunk"]  # a compiled wrapper
    eager.train()
    compiled.train()
    for name in ("trunk", "embedder"):
        for (key, a), b in zip(
            eager.models[name].state_dict().items(), compiled.models[name].state_dict().values()
        ):
            assert torch.allclose(a.float(), b.float(), atol=1e-6), (name, key)
    # the compiled modules share their parameters with the saved models
    assert (
        compiled.models["embedder"].weight
        is dict(compiled.forward_models["embedder"].named_parameters())["_orig_mod.weight"]
    )


@pytest.mark.parametrize("option", [3, "no_such_backend"])
def test_bad_option_is_a_config_error(option):
    with pytest.raises(ConfigError, match="compile_models"):
        compiled_models({"trunk": torch.nn.Linear(2, 2)}, option)
