import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A temp copy of the shared image datasets and UCI digits (never written in place).

    Skips if absent.
    """
    import shutil

    candidates = [
        os.environ.get("WGAN_LIP_TEST_DATA"),
        os.environ.get("WGAN_LIP_DATA"),
        SHARED_DATA,
    ]
    found = [c for c in candidates if c and os.path.isdir(os.path.join(c, "MNIST", "raw"))]
    if not found:
        pytest.skip("no MNIST/raw under $WGAN_LIP_TEST_DATA, $WGAN_LIP_DATA or ../shared/data")
    src = found[0]
    root = tmp_path_factory.mktemp("data")
    for sub in ("MNIST/raw", "FashionMNIST/raw", "cifar10-subset", "uci-digits"):
        if os.path.isdir(os.path.join(src, sub)):
            shutil.copytree(os.path.join(src, sub), root / sub)
    return root
