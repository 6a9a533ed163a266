"""How many intra-op threads a training run should use: few for small work, never more than
the cores that are free.

A small critic gains nothing from torch's intra-op threads (each step is a few small matrix
products: the threads mostly synchronize), and loses badly when another process keeps a core
busy: on a 2-core machine beside one CPU-bound process, a W1 estimate of 2,000 x 10 samples
took 4.5 s with torch's 2 threads and 1.6 s with 1 (``scripts/bench_w1.py --sections
threads``; the record is in the benchmarks page of the documentation). So a run takes one
thread for small work and, for large work, the cores no other process is using, up to
torch's own setting; an explicit ``OMP_NUM_THREADS`` (or ``WGAN_LIP_THREADS``) is the
user's choice and is kept. The work of a step is counted in multiply-adds
(:func:`forward_macs` counts them for any network;
:class:`~wgan_lip.work_threads.WorkThreads` applies the choice to a Lightning ``fit``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import torch
from torch import nn

# multiply-adds per training step below which one thread is fastest (measured on 2 cores:
# 2,000 x 10 with the default family, ~5e7 per step, ran faster on one thread; 5,000 x 784,
# ~7e7, faster on two)
SMALL_WORK = 6e7


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _running_here() -> int:
    """Threads of this process that are running now (OpenMP workers spin between ops)."""
    running = 0
    try:
        for task in os.scandir("/proc/self/task"):
            try:
                with open(os.path.join(task.path, "stat")) as f:
                    # the state follows the parenthesised command name
                    running += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except (OSError, IndexError):
                continue
    except OSError:
        return 1
    return max(1, running)


def busy_elsewhere(samples: int = 5) -> int:
    """Cores kept busy by other processes now.

    The runnable tasks of ``/proc/loadavg`` less this process's running threads (the median
    of a few samples), or the 1-minute load average where there is no ``/proc``.

    Args:
        samples: readings of the instantaneous count (10 ms apart).

    Returns:
        A count of busy cores, at least 0.

    Example:
        >>> from wgan_lip.threads import busy_elsewhere
        >>> busy_elsewhere() >= 0
        True
    """
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return max(0, round(os.getloadavg()[0]) - 1) if hasattr(os, "getloadavg") else 0
        counts.append(running - _running_here())
        if i + 1 < samples:
            time.sleep(0.01)
    counts.sort()
    return max(0, counts[len(counts) // 2])


def explicit_threads() -> int | None:
    """The thread count the user chose in the environment, or None.

    ``WGAN_LIP_THREADS`` first, else ``OMP_NUM_THREADS``.

    Returns:
        The positive count, or None when neither is set to one.

    Example:
        >>> import os
        >>> from wgan_lip.threads import explicit_threads
        >>> os.environ["WGAN_LIP_THREADS"] = "3"
        >>> explicit_threads()
        3
        >>> del os.environ["WGAN_LIP_THREADS"]
    """
    for name in ("WGAN_LIP_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def choose_threads(work: float) -> int:
    """The intra-op threads for training steps of ``work`` multiply-adds each.

    The user's explicit choice when there is one; else 1 for small work (below
    :data:`SMALL_WORK`); else the cores no other process is busy on, at most torch's current
    setting and at least 1.

    Args:
        work: multiply-adds per step (parameters x batch rows is a fair estimate).

    Returns:
        A positive thread count.

    Example:
        >>> from wgan_lip.threads import choose_threads
        >>> choose_threads(1e5)  # a small critic: one thread
        1
    """
    chosen = explicit_threads()
    if chosen is not None:
        return chosen
    if work < SMALL_WORK:
        return 1
    free = _cores() - busy_elsewhere()
    return max(1, min(torch.get_num_threads(), free))


@contextlib.contextmanager
def threads_for(work: float) -> Iterator[int]:
    """Run the block with :func:`choose_threads` ``(work)`` intra-op threads, then restore.

    Args:
        work: multiply-adds per step of the work inside.

    Yields:
        The thread count in use.

    Example:
        >>> import torch
        >>> from wgan_lip.threads import threads_for
        >>> before = torch.get_num_threads()
        >>> with threads_for(1e5) as n:
        ...     n == torch.get_num_threads()
        True
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    n = choose_threads(work)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def forward_macs(net: nn.Module, *inputs: torch.Tensor) -> float:
    """Multiply-adds of one forward pass of ``net`` on ``inputs`` (counted, not estimated).

    Args:
        net: the network.
        *inputs: its inputs (one batch).

    Returns:
        Half the floating-point operations torch's flop counter sees (matrix products and
        convolutions). The pass runs in eval mode without gradients, so batch-norm
        statistics do not move; the mode is put back.

    Example:
        >>> import torch
        >>> from wgan_lip.threads import forward_macs
        >>> forward_macs(torch.nn.Linear(10, 20, bias=False), torch.zeros(4, 10))
        800.0
    """
    from torch.utils.flop_counter import FlopCounterMode

    training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(*inputs)
    finally:
        net.train(training)
    return counter.get_total_flops() / 2
