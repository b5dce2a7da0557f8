"""The decomposition of a cosine similarity over pairs of feature-map positions, against hand-worked
examples, a naive double loop over the paper's formula, and the models' own forward passes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmlbench.attribution.decompose import heatmaps, pair_contributions, position_embeddings, position_parts
from dmlbench.attribution.forms import affine_form, spatial_trunk
from dmlbench.attribution.pairs import explain_pairs
from dmlbench.errors import ConfigError
from dmlbench.models.bninception import BNInception
from dmlbench.models.embedders import MLP, IdentityEmbedder
from dmlbench.models.multilevel import MultiLevelSmallConvNet
from dmlbench.models.pooling import build_pooling
from dmlbench.models.small_cnn import SmallConvNet
from dmlbench.models.trunks import TorchvisionTrunk
from dmlbench.plugins.classification.embedder import NormalizedEmbedder
from dmlbench.plugins.contextual.model import ContextualEmbedder

# Two 2x2 maps of 2 channels; positions row-major: (0,0), (0,1), (1,0), (1,1).
# query:     [1,0]  [0,1]  [1,1]  [0,0]   -> mean [0.5, 0.5]
# neighbour: [2,0]  [0,0]  [0,0]  [2,2]   -> mean [1, 0.5]
QUERY = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]]], dtype=torch.float64)
NEIGHBOUR = torch.tensor([[[[2.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 2.0]]]], dtype=torch.float64)
IDENTITY = affine_form(IdentityEmbedder(2), torch.zeros(2, dtype=torch.float64))


def terms(maps: torch.Tensor, pooling: str) -> torch.Tensor:
    return position_embeddings(position_parts(maps, pooling)[0], IDENTITY)


def test_hand_worked_2x2_average_pooling():
    # |e_q| |e_n| = sqrt(0.5) sqrt(1.25) = sqrt(10) / 4, and each pair term is <f_q(i), f_n(j)> / 16,
    # so c_ij = <f_q(i), f_n(j)> / (4 sqrt(10)): dot 2 -> 1 / (2 sqrt 10), dot 4 -> 1 / sqrt 10.
    contributions = pair_contributions(terms(QUERY, "avg"), terms(NEIGHBOUR, "avg"))
    half, one = 1 / (2 * math.sqrt(10)), 1 / math.sqrt(10)
    expected = torch.tensor(
        [[half, 0, 0, half], [0, 0, 0, half], [half, 0, 0, one], [0, 0, 0, 0]], dtype=torch.float64
    )
    torch.testing.assert_close(contributions, expected, rtol=0, atol=1e-15)
    assert float(contributions.sum()) == pytest.approx(
        3 / math.sqrt(10), abs=1e-15
    )  # cos = 0.75 / (sqrt(10)/4)
    query_map, neighbour_map = heatmaps(contributions, (2, 2), (2, 2))
    torch.testing.assert_close(
        query_map, torch.tensor([[2 * half, half], [3 * half, 0]], dtype=torch.float64)
    )
    torch.testing.assert_close(
        neighbour_map, torch.tensor([[2 * half, 0], [0, 4 * half]], dtype=torch.float64)
    )


def test_hand_worked_2x2_max_pooling_takes_the_first_maximum():
    # query: channel 0 peaks at (0,0) and (1,0) -> (0,0); channel 1 at (0,1) and (1,0) -> (0,1).
    # neighbour: channel 0 at (0,0) and (1,1) -> (0,0); channel 1 at (1,1). y_q = [1, 1], y_n = [2, 2],
    # cos = 1 = <[1,0],[2,0]> / 4 + <[0,1],[0,2]> / 4 with |y_q| |y_n| = sqrt(2) sqrt(8) = 4.
    contributions = pair_contributions(terms(QUERY, "max"), terms(NEIGHBOUR, "max"))
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0, 0] = expected[1, 3] = 0.5
    torch.testing.assert_close(contributions, expected, rtol=0, atol=1e-15)


def test_naive_double_loop_of_the_paper_formula_with_a_biased_linear_embedder():
    torch.manual_seed(0)
    linear = nn.Linear(5, 3).double()
    query, neighbour = (
        torch.rand(1, 5, 3, 2, dtype=torch.float64),
        torch.rand(1, 5, 2, 4, dtype=torch.float64),
    )
    fq, fn = query.flatten(2)[0], neighbour.flatten(2)[0]  # [C, P]
    eq, en = linear(fq.mean(1)), linear(fn.mean(1))
    naive = torch.zeros(6, 8, dtype=torch.float64)
    for i in range(6):
        for j in range(8):  # <W f_q(i) + b, W f_n(j) + b> / (P_q P_n) / (|e_q| |e_n|)
            naive[i, j] = (linear(fq[:, i]) @ linear(fn[:, j])) / (6 * 8) / (eq.norm() * en.norm())
    mlp = MLP([3], input_size=5).double()
    mlp.net[0].load_state_dict(linear.state_dict())
    g = [
        position_embeddings(position_parts(m, "avg")[0], affine_form(mlp, m.flatten(2)[0].mean(1)))
        for m in (query, neighbour)
    ]
    torch.testing.assert_close(pair_contributions(*g), naive, rtol=1e-12, atol=1e-15)


class PooledTrunk(nn.Module):
    """A small random trunk with the trunk protocol (forward_features + pool)."""

    def __init__(self, pooling: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2)
        )
        self.pool = build_pooling(pooling)
        self.num_features = 8

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(images))


def cosine_by_forward(trunk: nn.Module, embedder: nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    """The models' own forward passes, in float64: the reference for the sums."""
    trunk, embedder = trunk.double().eval(), embedder.double().eval()
    with torch.no_grad():
        ea, eb = embedder(trunk(a[None].double())), embedder(trunk(b[None].double()))
    return float(torch.nn.functional.cosine_similarity(ea, eb)[0])


EMBEDDERS = {
    "identity": lambda: IdentityEmbedder(8),
    "linear": lambda: MLP([4], input_size=8),
    "normalized": lambda: NormalizedEmbedder(8, embedding_size=4),
    "contextual_layernorm_bias": lambda: ContextualEmbedder(8, embedding_size=4, layer_norm=True, bias=True),
    "contextual_no_layernorm": lambda: ContextualEmbedder(8, embedding_size=4, layer_norm=False),
}


@pytest.mark.parametrize("pooling", ["avg", "max", "avg+max"])
@pytest.mark.parametrize("embedder_name", sorted(EMBEDDERS))
def test_exact_cases_sum_to_the_cosine_of_the_forward_pass(pooling, embedder_name):
    torch.manual_seed(1)
    trunk, embedder = PooledTrunk(pooling), EMBEDDERS[embedder_name]()
    if embedder_name.startswith("contextual"):
        nn.init.normal_(embedder.remap.bias)  # a bias that matters
    images = [torch.rand(3, 24, 20), torch.rand(3, 20, 28), torch.rand(3, 24, 24)]  # maps of other shapes
    explanations = explain_pairs([{"trunk": trunk, "embedder": embedder}], images)
    for image, explanation in zip(images[1:], explanations):
        assert explanation.exact
        assert explanation.contribution_sum == pytest.approx(
            cosine_by_forward(trunk, embedder, images[0], image), abs=1e-12
        )
        assert float(explanation.query_map.sum()) == pytest.approx(explanation.contribution_sum, abs=1e-12)
        assert float(explanation.neighbour_map.sum()) == pytest.approx(
            explanation.contribution_sum, abs=1e-12
        )


@pytest.mark.parametrize(
    ("pooling", "embedder"),
    [("gem", lambda: IdentityEmbedder(8)), ("avg", lambda: MLP([16, 4], input_size=8))],
    ids=["gem_gradient_x_activation", "mlp_linearised"],
)
def test_gem_and_a_hidden_layer_mlp_are_marked_approximate_yet_add_up(pooling, embedder):
    # GeM is homogeneous of degree 1 and a ReLU MLP piecewise affine, so the attributions still
    # add up to the cosine of the forward pass; the split itself is an attribution (exact: false).
    torch.manual_seed(2)
    trunk, head = PooledTrunk(pooling), embedder()
    images = [torch.rand(3, 24, 24), torch.rand(3, 24, 24)]
    (explanation,) = explain_pairs([{"trunk": trunk, "embedder": head}], images)
    assert not explanation.exact
    # (the pooling module computes GeM in float32 even for float64 maps: float32 agreement)
    assert explanation.contribution_sum == pytest.approx(cosine_by_forward(trunk, head, *images), abs=1e-7)


def test_ensemble_is_the_mean_of_the_fold_models():
    torch.manual_seed(3)
    models = [{"trunk": PooledTrunk("avg"), "embedder": MLP([4], input_size=8)} for _ in range(3)]
    images = [torch.rand(3, 24, 24), torch.rand(3, 24, 24)]
    (explanation,) = explain_pairs(models, images)
    per_model = [cosine_by_forward(m["trunk"], m["embedder"], *images) for m in models]
    concatenated = [
        torch.cat(
            [
                torch.nn.functional.normalize(m["embedder"](m["trunk"](x[None].double())), dim=1)
                for m in models
            ],
            1,
        )
        for x in images
    ]
    ensemble_cosine = float(torch.nn.functional.cosine_similarity(*concatenated)[0])
    assert ensemble_cosine == pytest.approx(sum(per_model) / 3, abs=1e-12)
    assert explanation.contribution_sum == pytest.approx(ensemble_cosine, abs=1e-12)


def test_small_conv_net_is_explained_and_multilevel_trunks_are_refused():
    torch.manual_seed(4)
    trunk, embedder = SmallConvNet(num_features=16, width=4, num_blocks=2), MLP([4], input_size=16)
    images = [torch.rand(3, 16, 16), torch.rand(3, 16, 16)]
    (explanation,) = explain_pairs([{"trunk": trunk, "embedder": embedder}], images)
    assert explanation.query_map.shape == (4, 4)
    assert explanation.contribution_sum == pytest.approx(
        cosine_by_forward(trunk, embedder, *images), abs=1e-12
    )
    with pytest.raises(ConfigError, match="MultiLevelSmallConvNet has no spatial feature maps"):
        spatial_trunk(MultiLevelSmallConvNet())


class ScaledTrunk(PooledTrunk):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(images)


def test_a_trunk_whose_output_is_not_its_pooled_maps_is_refused():
    trunk = ScaledTrunk("avg")
    with pytest.raises(ConfigError, match="not the avg pooling of its forward_features maps"):
        explain_pairs([{"trunk": trunk, "embedder": IdentityEmbedder(8)}], [torch.rand(3, 16, 16)] * 2)


@pytest.mark.parametrize(
    "make_trunk",
    [
        lambda: TorchvisionTrunk("resnet18", pretrained=False, pooling="avg+max"),
        lambda: TorchvisionTrunk("mobilenet_v3_small", pretrained=False, pooling="max"),
        lambda: BNInception(pretrained=False),
    ],
    ids=["resnet18_avg+max", "mobilenet_max", "bninception_avg"],
)
def test_the_project_trunks_sum_exactly(make_trunk):
    torch.manual_seed(5)
    trunk = make_trunk().eval()
    embedder = MLP([8], input_size=trunk.num_features)
    images = [torch.rand(3, 96, 96), torch.rand(3, 96, 128)]
    (explanation,) = explain_pairs([{"trunk": trunk, "embedder": embedder}], images)
    assert explanation.exact
    assert explanation.contribution_sum == pytest.approx(
        cosine_by_forward(trunk, embedder, *images), abs=1e-12
    )
