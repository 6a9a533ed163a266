import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")

# Under pytest-xdist each worker gets its share of the cores (and so do the processes it
# starts), so the workers do not oversubscribe the machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _threads = os.environ.get("OMP_NUM_THREADS", "")
    if not _threads.isdigit() or int(_threads) < 1:
        _threads = str(max(1, (_cores or 1) // _WORKERS))
        os.environ["OMP_NUM_THREADS"] = _threads
    torch.set_num_threads(int(_threads))


@pytest.fixture(autouse=True)
def _no_leftover_rendezvous():
    """Forget the DDP address a test's in-process Lightning run left in the environment, so a
    later DDP test of the same worker finds a free port of its own instead of reusing it."""
    before = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT")}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
