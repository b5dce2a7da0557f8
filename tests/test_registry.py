"""Name lookup and construction through the registry."""

import pytest
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import MultiSimilarityLoss
from pytorch_metric_learning.reducers import MeanReducer

from dmlbench.errors import ConfigError, RegistryError
from dmlbench.registry import available, build, lookup, nearest_names, register


def test_library_names_resolve():
    assert lookup("loss", "MultiSimilarityLoss") is MultiSimilarityLoss
    assert "RMSprop" in available("optimizer")
    assert "MPerClassSampler" in available("sampler")


def test_unknown_name_names_role_and_nearest():
    with pytest.raises(RegistryError) as info:
        lookup("loss", "MultiSimilarityLos", role="loss_funcs.metric_loss")
    message = str(info.value)
    assert "loss_funcs.metric_loss" in message and "MultiSimilarityLoss" in message.split("nearest:")[1]


def test_nearest_is_case_insensitive():
    assert nearest_names("optimizer", "rmsprop")[0] == "RMSprop"


def test_nested_objects_are_built():
    loss = build(
        "loss",
        {
            "MultiSimilarityLoss": {
                "alpha": 3,
                "distance": {"CosineSimilarity": {}},
                "reducer": {"MeanReducer": {}},
            }
        },
    )
    assert isinstance(loss, MultiSimilarityLoss) and loss.alpha == 3
    assert isinstance(loss.distance, CosineSimilarity) and isinstance(loss.reducer, MeanReducer)


def test_unknown_keyword_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"'alpah'.*did you mean alpha"):
        build("loss", {"MultiSimilarityLoss": {"alpah": 2}}, role="loss_funcs.metric_loss")


def test_spec_must_have_one_class():
    with pytest.raises(ConfigError, match="expected one"):
        build("loss", {"ContrastiveLoss": {}, "TripletMarginLoss": {}})


def test_registered_class_wins_and_is_listed():
    from dmlbench.training.plugins import TrainingPlugin

    @register("training_plugin", name="TestOnlyHook")
    class Hook(TrainingPlugin):
        def __init__(self, value: int = 1) -> None:
            self.value = value

    assert build("training_plugin", {"TestOnlyHook": {"value": 5}}).value == 5
    assert "TestOnlyHook" in available("training_plugin")


def test_check_keywords_catches_typos_without_building():
    from dmlbench.registry import check_keywords

    with pytest.raises(ConfigError, match=r"'alpah'.*did you mean alpha"):
        check_keywords("loss", {"MultiSimilarityLoss": {"alpah": 2}}, "loss_funcs.metric_loss")
    with pytest.raises(ConfigError, match=r"reducer.MeanReducer: unknown argument 'foo'"):
        check_keywords(
            "loss", {"TripletMarginLoss": {"reducer": {"MeanReducer": {"foo": 1}}}}, "loss_funcs.metric_loss"
        )
    # a keyword a **kwargs chain may accept is not rejected (torchvision's resnet50 forwards it)
    check_keywords("model", {"resnet50": {"num_classes": 10}}, "models.trunk")


@pytest.mark.parametrize("typo", ["ReLu", "CosineSimilarit", "Linea"])
def test_a_misspelt_loss_is_offered_losses_only(typo):
    """torch.nn modules that are not losses (activations, layers, similarities) are not losses."""
    import torch

    with pytest.raises(RegistryError) as caught:
        lookup("loss", typo)
    message = str(caught.value)
    for not_a_loss in ("ReLU", "CosineSimilarity", "Linear"):
        assert not_a_loss not in message.split("nearest:")[-1].replace(",", " ").split()
    assert not issubclass(torch.nn.ReLU, torch.nn.modules.loss._Loss)  # the premise
    with pytest.raises(RegistryError):
        lookup("loss", "ReLU")  # a real module, but not a loss


def test_library_losses_of_every_family_resolve():
    for name in (
        "CrossEntropyLoss",
        "MultiSimilarityLoss",
        "CrossBatchMemory",
        "MultipleLosses",
        "ContextualHybridLoss",
        "NormSoftmaxLoss",
    ):
        assert lookup("loss", name) is not None
