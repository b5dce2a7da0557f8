"""`python -m dmlbench.data weights` against a local HTTP server: files land in TORCH_HOME's hub
cache, the sha256 digits in a file's name are checked, a failure leaves no empty folder; the
shipped configs' weights; a missing-weights error names the command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dmlbench.data.__main__ import main
from dmlbench.models import bninception, weight_files
from dmlbench.models.weight_files import WeightFile, shipped_model_files, weights_by_name, weights_of_configs

PAYLOAD = b"pretrained weights " * 500


def _serve_bninception(fake_server, monkeypatch, payload: bytes = PAYLOAD, digits: str | None = None) -> str:
    """Serve ``payload`` as BNInception's weight file, named with ``digits`` (default: its own
    sha256's first 9 hex digits, as torch.hub names files); -> the file name."""
    digits = digits or hashlib.sha256(payload).hexdigest()[:9]
    file_name = f"bn_inception-{digits}.pth"
    fake_server.files[f"/cadene/{file_name}"] = payload
    monkeypatch.setattr(bninception, "WEIGHTS_FILE", file_name)
    monkeypatch.setattr(bninception, "WEIGHTS_URL", fake_server.url(f"/cadene/{file_name}"))
    return file_name


def test_weights_land_in_the_hub_cache_and_are_kept(fake_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    file_name = _serve_bninception(fake_server, monkeypatch)
    assert main(["weights", "BNInception", "--no-progress"]) == 0
    target = tmp_path / "torch" / "hub" / "checkpoints" / file_name
    assert target.read_bytes() == PAYLOAD
    assert f"BNInception: ready at {target}" in capsys.readouterr().out
    requests = len(fake_server.requests)
    assert main(["weights", "BNInception", "--no-progress"]) == 0  # intact copy: no download
    assert len(fake_server.requests) == requests


def test_a_torchvision_model_by_name_through_a_mirror(fake_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    digits = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    published = WeightFile("resnet18", f"resnet18-{digits}.pth", "http://127.0.0.1:9/models/unreachable.pth")
    monkeypatch.setattr(weight_files, "torchvision_weights", lambda model, pretrained=True: published)
    fake_server.files[f"/mirror/resnet18-{digits}.pth"] = PAYLOAD
    assert main(["weights", "resnet18", "--mirror", fake_server.url("/mirror"), "--no-progress"]) == 0
    assert (tmp_path / "torch" / "hub" / "checkpoints" / f"resnet18-{digits}.pth").read_bytes() == PAYLOAD


def test_wrong_checksum_fails_and_leaves_no_empty_folder(fake_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _serve_bninception(fake_server, monkeypatch, digits="0123abcd9")
    assert main(["weights", "BNInception", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err and "expected it to start with 0123abcd9" in err
    assert not (tmp_path / "torch").exists()  # hub/checkpoints was created for it and removed


def test_network_failure_leaves_no_empty_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(bninception, "WEIGHTS_URL", "http://127.0.0.1:9/bn_inception-52deb4733.pth")
    assert main(["weights", "BNInception", "--no-progress"]) == 1
    assert "could not download bn_inception-52deb4733.pth" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_is_a_usage_error_with_the_nearest(capsys) -> None:
    assert main(["weights", "resnt50"]) == 2
    assert "nearest: resnet50" in capsys.readouterr().err


def test_names_resolve_to_the_published_files() -> None:
    assert weights_by_name("bninception").file_name == "bn_inception-52deb4733.pth"
    assert weights_by_name("resnet50").url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert weights_by_name("resnet50:IMAGENET1K_V2").file_name == "resnet50-11ad3fa6.pth"
    assert weights_by_name("resnet50-11ad3fa6.pth").name == "resnet50:IMAGENET1K_V2"
    assert weights_by_name("resnet50").remote().sha256_prefix == "0676ba61"


def test_default_is_every_file_the_shipped_configs_load() -> None:
    names = {weights.file_name for weights in weights_of_configs(shipped_model_files())}
    # the default trunk and the ResNet50 of the contextual / DAS / AVSL / classification configs
    assert names == {"bn_inception-52deb4733.pth", "resnet50-0676ba61.pth"}


def test_missing_weights_error_names_the_command(tmp_path, monkeypatch) -> None:
    from dmlbench.config.value_checks import check_pretrained_weights
    from dmlbench.errors import ConfigError
    from dmlbench.models.trunks import TorchvisionTrunk

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"`python -m dmlbench\.data weights BNInception`"):
        check_pretrained_weights(bninception.BNInception, {"pretrained": True})
    with pytest.raises(ConfigError, match=r"`python -m dmlbench\.data weights resnet50-11ad3fa6\.pth`"):
        check_pretrained_weights(TorchvisionTrunk, {"name": "resnet50", "pretrained": "IMAGENET1K_V2"})
    assert not Path(tmp_path / "hub").exists()
