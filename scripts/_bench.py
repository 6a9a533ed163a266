"""What the benchmark scripts share: one implementation each.

- the machine a result was measured on (:func:`machine`);
- timing side by side: warm-up, then the candidates alternated round by round, medians
  (:func:`alternated_times`, :func:`alternate`), and the one-Adam-step layer timings with
  their orthogonality checks (:func:`step_fn`, :func:`sval_error`, :func:`conv_svals`,
  :func:`peer_linear`, :func:`peer_conv`);
- merging results into ``benchmarks/*.json`` under a file lock, so sections run in
  separate processes do not lose each other's rows (:func:`merged_json`);
- the settings of a LightningCLI config (:func:`recipe`) and a WGAN trained for a fixed
  training time (:func:`train_one`, :func:`critic_certified`);
- the certified-robustness radii and published results the robust benchmarks compare to;
- a Python file imported by its path (:func:`load_module`), e.g. the test suite's data
  classes, without putting folders on ``sys.path``.

A script of this folder imports it as ``import _bench`` (``python scripts/x.py`` puts this
folder first on ``sys.path``). Lightning is imported only by the GAN helpers.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from wgan_lip.jsonio import write_json_strict

ROOT = Path(__file__).resolve().parent.parent

# Certified L2 radii of the MNIST robustness results (as Li et al. 2019).
MNIST_RADII = (0.3, 1.0, 1.58)
# a Trainer that writes nothing and prints nothing: timed training runs and smoke checks
QUIET_TRAINER = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    limit_val_batches=0,
    num_sanity_val_steps=0,
)
# Published 200-epoch GPU results (Li et al. 2019, Table 2): clean, certified at 0.3 / 1.58.
PUBLISHED = {
    "FC-3 (Anil et al.)": (98.71, 97.06, 54.46),
    "BCOP-Large (Li et al.)": (98.77, None, 56.66),
}


# ----- the machine -----


def machine() -> dict:
    """The machine and software a result was measured on.

    Returns:
        ``cores``, ``torch_threads``, ``torch`` (its version), ``device`` (``cpu``; a GPU
        script overwrites it), ``cpu``, ``python`` and today's ``date``.

    Example:
        >>> sorted(machine())[:3]
        ['cores', 'cpu', 'date']
    """
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }


# ----- timing side by side -----


@contextmanager
def machine_load(load: str) -> Iterator[None]:
    """Run the block on an idle machine (``"idle"``) or beside one CPU-bound process
    (``"busy"``: ``python -c "while True: pass"``, killed when the block ends).

    Args:
        load: ``"idle"`` or ``"busy"``.

    Example:
        >>> with machine_load("idle"):
        ...     pass
    """
    busy = None
    if load == "busy":
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def alternated_times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds of every call of each fn, timed in alternation (A, B, C, A, B, C, ...).

    Each fn first runs ``warmup`` times untimed, so that no candidate pays for the caches
    and lazy initializations of all.

    Args:
        fns: the candidates by name, each one call of the work timed.
        repeats: timed rounds.
        warmup: untimed calls of each fn before the first round.

    Returns:
        The ``repeats`` wall times of each fn, in round order.

    Example:
        >>> times = alternated_times({"a": lambda: None, "b": lambda: None}, 4, warmup=1)
        >>> [len(v) for v in times.values()]
        [4, 4]
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def alternate(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each fn, timed in alternation (see :func:`alternated_times`).

    Args:
        fns: the candidates by name.
        repeats: timed rounds.
        warmup: untimed calls of each fn first.

    Returns:
        The median wall time of each fn.

    Example:
        >>> sorted(alternate({"a": lambda: None, "b": lambda: None}, 3, warmup=0))
        ['a', 'b']
    """
    times = alternated_times(fns, repeats, warmup)
    return {k: statistics.median(v) for k, v in times.items()}


def step_fn(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One training step of ``layer`` on ``x`` (forward, MSE to a fixed target, backward, Adam).

    Args:
        layer: the layer to train.
        x: its input batch.

    Returns:
        A function that takes one step each call.

    Example:
        >>> step = step_fn(nn.Linear(3, 2), torch.randn(4, 3))
        >>> step()
    """
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    target = torch.randn_like(layer(x)).detach()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.mse_loss(layer(x), target).backward()
        opt.step()

    return step


def sval_error(w: torch.Tensor) -> float:
    """The orthogonality error of a matrix: the largest ``|s - 1|`` over its singular values.

    Args:
        w: a matrix.

    Returns:
        ``max |s - 1|``, computed in float64.

    Example:
        >>> sval_error(torch.eye(3))
        0.0
    """
    s = torch.linalg.svdvals(w.detach().double())
    return float((s - 1).abs().max())


def conv_svals(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """All singular values of the circular convolution by ``kernel`` on size x size inputs.

    Args:
        kernel: a ``(out, in, k, k)`` convolution kernel.
        size: the input's height and width.

    Returns:
        The singular values, ``(size, size, min(out, in))``, in float64.

    Example:
        >>> conv_svals(torch.ones(1, 1, 1, 1), 4).flatten().tolist() == [1.0] * 16
        True
    """
    k = kernel.detach().double()
    spec = torch.fft.fft2(k, s=(size, size)).permute(2, 3, 0, 1)
    return torch.linalg.svdvals(spec)


def peer_linear() -> Callable[[int, int], nn.Module] | None:
    """deel-torchlip's ``SpectralLinear`` maker, or None where deel-torchlip is missing.

    Returns:
        ``make(in_features, out_features)``, or None.

    Example:
        >>> make = peer_linear()
        >>> make is None or make(4, 4).weight.shape == (4, 4)
        True
    """
    try:
        from deel import torchlip
    except ImportError:
        return None
    return lambda i, o: torchlip.SpectralLinear(i, o)


def peer_conv() -> Callable[[int], nn.Module] | None:
    """orthogonium's ``AdaptiveOrthoConv2d`` maker (3x3, circular), or None where it is missing.

    Returns:
        ``make(channels)``, or None.

    Example:
        >>> make = peer_conv()
        >>> make is None or make(4).weight.shape[:2] == (4, 4)
        True
    """
    try:
        from orthogonium.layers.conv.AOC.ortho_conv import AdaptiveOrthoConv2d
    except ImportError:
        return None
    return lambda c: AdaptiveOrthoConv2d(c, c, 3, padding="same", padding_mode="circular")


# ----- results -----


@contextmanager
def merged_json(
    path: str | os.PathLike, *, lock: str | os.PathLike | None = None, indent: int | None = 1
) -> Iterator[dict]:
    """The JSON document at ``path`` to change in place, written back when the block ends.

    The read, the change and the write hold an exclusive lock, so processes that each add
    their own sections or rows to one file do not drop each other's. Nothing is written when
    the block raises.

    Args:
        path: the JSON file (created with its folder when missing).
        lock: the lock file (default: ``path`` with the suffix ``.lock``).
        indent: ``json.dumps``'s indent of the written file.

    Returns:
        A context manager whose value is the document (an empty dict for a new file).

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "x.json"
        >>> with merged_json(out) as doc:
        ...     doc["a"] = 1
        >>> with merged_json(out) as doc:
        ...     doc["b"] = 2
        >>> json.loads(out.read_text())
        {'a': 1, 'b': 2}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock") if lock is None else lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        doc = json.loads(path.read_text()) if path.exists() else {}
        yield doc
        write_json_strict(path, doc, indent=indent)


def load_module(path: str | os.PathLike, name: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` (a file outside any package on ``sys.path``).

    The module is registered in ``sys.modules`` under ``name`` (what its classes and
    dataclasses expect) and ``sys.path`` is left as it is.

    Args:
        path: the ``.py`` file; relative paths are relative to the repository root.
        name: the module's name (default: the file's stem).

    Returns:
        The executed module.

    Example:
        >>> load_module("scripts/_bench.py", "_bench_copy").MNIST_RADII
        (0.3, 1.0, 1.58)
    """
    path = ROOT / path
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def recipe(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(model init_args, data init_args)`` of a LightningCLI config of ``configs/``.

    Args:
        path: the YAML file; relative paths are relative to the repository root.

    Returns:
        Fresh dicts on every call (safe to change).

    Example:
        >>> model, data = recipe("configs/gan/mnist_hard.yaml")
        >>> "constraint" in model, "batch_size" in data
        (True, True)
    """
    import yaml

    cfg = yaml.safe_load((ROOT / path).read_text())
    return dict(cfg["model"]["init_args"]), dict(cfg["data"]["init_args"])


# ----- WGAN runs at equal training time -----


@functools.cache
def _time_budget_class() -> type:
    """The Lightning callback of :func:`train_one` (made on first use: importing Lightning
    costs seconds that the scripts without a GAN should not pay)."""
    import lightning as L

    class TimeBudget(L.Callback):
        """Stop after ``seconds`` of training time; call ``snapshot`` at evenly spaced times.

        The clock runs only inside training batches, so evaluation does not eat the budget.
        """

        def __init__(self, seconds: float, snapshots: int, snapshot) -> None:
            self.seconds, self.snapshot = seconds, snapshot
            self.marks = [seconds * (i + 1) / snapshots for i in range(snapshots)]
            self.elapsed = 0.0

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.elapsed += time.perf_counter() - self._t0
            while self.marks and self.elapsed >= self.marks[0]:
                self.marks.pop(0)
                if module.critic_step % module.settings.n_critic == 0 or not self.marks:
                    self.snapshot(module, self.elapsed)
                else:  # wait for the end of a generator round
                    self.marks.insert(0, self.elapsed)
                    break
            if self.elapsed >= self.seconds and not self.marks:
                trainer.should_stop = True

    return TimeBudget


def train_one(module, dm, seconds: float, snapshots: int, snapshot, **trainer_kw) -> dict:
    """Train a WGAN for ``seconds`` of training time (evaluation pauses the clock).

    Args:
        module: the :class:`~wgan_lip.gan.WGAN`.
        dm: its datamodule.
        seconds: the training-time budget.
        snapshots: how many times ``snapshot`` is called, evenly spaced over the budget (at
            the end of a generator round), the last one at the end.
        snapshot: ``snapshot(module, elapsed_seconds)``.
        **trainer_kw: ``lightning.Trainer`` settings replacing the defaults (one quiet CPU
            process, no logger, checkpoints or validation).

    Returns:
        ``train_seconds``, ``critic_steps`` and ``generator_steps``.

    Example:
        >>> from wgan_lip.gan import WGAN, ToyDataModule  # doctest: +SKIP
        >>> train_one(WGAN("hard", data_shape=(2,)), ToyDataModule("8gaussians"), 1.0, 1,
        ...           lambda m, t: None)["critic_steps"] > 0  # doctest: +SKIP
        True
    """
    import lightning as L

    budget = _time_budget_class()(seconds, snapshots, snapshot)
    settings = dict(max_steps=-1, max_epochs=-1, accelerator="cpu", devices=1, **QUIET_TRAINER)
    trainer = L.Trainer(**{**settings, **trainer_kw}, callbacks=[budget])
    trainer.fit(module, datamodule=dm)
    return {
        "train_seconds": budget.elapsed,
        "critic_steps": module.critic_step,
        "generator_steps": module.generator_step,
    }


@torch.no_grad()
def critic_certified(module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The WGAN critic's own certified W1 lower bound: its dual value over its Lipschitz bound.

    Args:
        module: a :class:`~wgan_lip.gan.WGAN` (the critic is evaluated in eval mode and put
            back in training mode).
        real: real samples.
        fake: generated samples.

    Returns:
        ``(mean f(real) - mean f(fake)) / lipschitz_bound(f)``, in float64.

    Example:
        >>> from wgan_lip.gan import WGAN, GANArchitecture
        >>> arch = GANArchitecture(generator_widths=(8,), critic={"widths": [8]})
        >>> gan = WGAN("hard", data_shape=(2,), architecture=arch)
        >>> x = torch.randn(16, 2)
        >>> critic_certified(gan, x, x)
        0.0
    """
    from wgan_lip.layers import lipschitz_bound
    from wgan_lip.w1 import kr_dual

    critic = module.critic.eval()
    value = float(kr_dual(critic(real).double(), critic(fake).double())) / lipschitz_bound(critic)
    critic.train()
    return value
