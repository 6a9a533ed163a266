"""Checkpoint integrity: flipped bytes inside a tensor entry are refused before loading."""

import pytest
import torch

from tests.test_faults import _flip_bytes_inside_the_largest_entry
from wgan_lip.checkpoints import verify_checkpoint_file
from wgan_lip.errors import InputError
from wgan_lip.robust.checkpoint import load_classifier


def test_intact_checkpoint_passes_and_flipped_bytes_are_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}, "hyper_parameters": {}}, path)
    verify_checkpoint_file(path)
    _flip_bytes_inside_the_largest_entry(path)
    with pytest.raises(InputError, match="fails its CRC check"):
        verify_checkpoint_file(path)
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_classifier(path)  # what `wgan-lip certify` loads through


def test_legacy_non_zip_files_are_left_to_the_loader(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes(b"not a zip at all")
    verify_checkpoint_file(path)  # no error here; torch.load reports it


class _Payload:
    """An arbitrary class: unpickling it would run this module's code."""


def test_a_checkpoint_with_pickled_objects_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"architecture": _Payload()}}, path)
    with pytest.raises(InputError, match="pickled objects beyond tensors"):
        load_classifier(path)


def test_a_file_that_is_no_checkpoint_is_unreadable_not_suspicious(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_classifier(path)


def test_certifying_a_diverged_model_is_one_input_error() -> None:
    from torch import nn

    from wgan_lip.robust.certify import model_bound

    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match=r"cannot certify this model: .*weight is not finite"):
        model_bound(lin)
