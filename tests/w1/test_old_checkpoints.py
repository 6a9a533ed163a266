"""W1 critic checkpoints written before the one critic interface still load, as the same
function: the single critic's network sat at ``critic.net`` and its sizes were flat
hyperparameters (``widths``, ``group_size``, ``channels``)."""

import lightning as L
import pytest
import torch

from wgan_lip.w1 import W1Critic
from wgan_lip.w1.module import migrate_hparams


def _old_layout(module: W1Critic, flat: dict) -> dict:
    """The checkpoint an older version wrote for the same network."""
    state = {}
    for k, v in module.state_dict().items():
        if k.startswith("critic.groups.network.net."):
            state["critic." + k[len("critic.groups.network.") :]] = v
        elif k in ("critic.shift", "critic.scale"):
            state[k] = v
    hparams = {
        "critic": module.hparams.critic,
        "input_shape": module.hparams.input_shape,
        "lr": None,
        "penalty_weight": 10.0,
        "clip_value": 0.01,
        "family": tuple(module.hparams.family),
        **flat,
    }
    return {
        "state_dict": state,
        "hyper_parameters": hparams,
        "pytorch-lightning_version": L.__version__,
    }


@pytest.mark.parametrize(
    ("kind", "shape", "flat", "network"),
    [
        (
            "groupsort",
            (3,),
            {"widths": (16, 16), "group_size": 4, "channels": (8, 16)},
            {"widths": [16, 16], "group_size": 4},
        ),
        (
            "groupsort",
            (3,),
            {"widths": None, "group_size": 2, "channels": (8, 16)},
            {"group_size": 2},
        ),
        (
            "bcop",
            (1, 8, 8),
            {"widths": (32, 32), "group_size": 2, "channels": (4,)},
            {"widths": [32], "channels": [4], "group_size": 2},
        ),
        (
            "gp",
            (3,),
            {"widths": (8,), "group_size": 2, "channels": (8, 16)},
            {"widths": [8]},  # a ReLU critic: the group size meant nothing
        ),
    ],
)
def test_an_older_single_critic_checkpoint_loads_as_the_same_function(
    kind, shape, flat, network, tmp_path
):
    assert migrate_hparams({"critic": kind, **flat})["network"] == network
    trained = W1Critic(kind, input_shape=shape, network=network).eval()
    with torch.no_grad():  # a trained state: moved normalization, changed weights
        trained.critic.shift.add_(0.5)
        for p in trained.parameters():
            p.mul_(1.1)
    path = tmp_path / "old.ckpt"
    torch.save(_old_layout(trained, flat), path)
    loaded = W1Critic.load_from_checkpoint(path).eval()
    # the checkpoint now keeps the complete network; the older fields are in it
    assert {k: loaded.hparams.network[k] for k in network} == network
    x = torch.randn(7, *shape)
    with torch.no_grad():
        assert torch.allclose(loaded(x), trained(x), rtol=0, atol=1e-6)
    new, old = loaded.state_dict(), trained.state_dict()
    assert new.keys() == old.keys()
    assert all(torch.equal(new[k], old[k]) for k in new if "parametrizations" in k)
