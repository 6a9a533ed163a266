"""Benchmark the certified layers against deel-torchlip, orthogonium and plain torch.

Side by side in one run (GUIDE §6): every candidate is warmed up, then the candidates are
timed in alternation, one training step (forward, backward, Adam) each per round, and the
median over the rounds is reported with the ratio to the reference. After the timed steps
the orthogonality error of each layer's weight is measured exactly.

Run:  .venv/bin/python scripts/bench_layers.py [--repeats 15] [--out benchmarks/layers.json]
Needs the bench extra (pip install -e '.[bench]') for the peers; a missing peer is skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wgan_lip.jsonio import write_json_strict
from wgan_lip.layers import AOLConv2d, BCOPConv2d, BjorckLinear, CayleyConv2d, SLLConv2d


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }


def step_fn(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    target = torch.randn_like(layer(x)).detach()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.mse_loss(layer(x), target).backward()
        opt.step()

    return step


def alternate(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 3) -> dict:
    """Median seconds per call of each fn, timed in alternation (A, B, C, A, B, C, ...)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def sval_error(w: torch.Tensor) -> float:
    s = torch.linalg.svdvals(w.detach().double())
    return float((s - 1).abs().max())


def conv_svals(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """All singular values of the circular convolution by ``kernel`` on size x size inputs."""
    k = kernel.detach().double()
    spec = torch.fft.fft2(k, s=(size, size)).permute(2, 3, 0, 1)
    return torch.linalg.svdvals(spec)


def peer_linear():
    try:
        from deel import torchlip
    except ImportError:
        return None
    return lambda i, o: torchlip.SpectralLinear(i, o)


def peer_conv():
    try:
        from orthogonium.layers.conv.AOC.ortho_conv import AdaptiveOrthoConv2d
    except ImportError:
        return None
    return lambda c: AdaptiveOrthoConv2d(c, c, 3, padding="same", padding_mode="circular")


def bench_linear(repeats: int) -> dict:
    n, batch = 1024, 256
    x = torch.randn(batch, n)
    layers = {"wgan_lip.BjorckLinear": BjorckLinear(n, n), "nn.Linear": nn.Linear(n, n)}
    make_peer = peer_linear()
    if make_peer:
        layers["deel-torchlip.SpectralLinear"] = make_peer(n, n)
    med = alternate({k: step_fn(m, x) for k, m in layers.items()}, repeats)
    rows = {}
    for name, m in layers.items():
        m.eval()
        rows[name] = {"step_s": med[name], "ortho_error": sval_error(m.weight)}
    # Eval-mode forward: the cached orthonormal weight against a plain Linear.
    with torch.no_grad():
        fwd = alternate(
            {
                "wgan_lip.BjorckLinear": lambda: layers["wgan_lip.BjorckLinear"](x),
                "nn.Linear": lambda: layers["nn.Linear"](x),
            },
            repeats * 4,
        )
    for k, v in fwd.items():
        rows[k]["eval_forward_s"] = v
    return {"case": f"Linear {n}x{n}, batch {batch}, one Adam step", "rows": rows}


def bench_conv(repeats: int) -> dict:
    c, size, batch = 64, 16, 64
    x = torch.randn(batch, c, size, size)
    layers = {
        "wgan_lip.BCOPConv2d": BCOPConv2d(c, c, 3),
        "wgan_lip.CayleyConv2d": CayleyConv2d(c, c, 3),
        "nn.Conv2d": nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"),
    }
    make_peer = peer_conv()
    if make_peer:
        layers["orthogonium.AdaptiveOrthoConv2d"] = make_peer(c)
    med = alternate({k: step_fn(m, x) for k, m in layers.items()}, repeats)
    rows = {}
    for name, m in layers.items():
        m.eval()
        with torch.no_grad():
            if isinstance(m, CayleyConv2d):  # its frequency matrices on this input size
                s = torch.linalg.svdvals(m.frequency_matrices((size, size)).to(torch.complex128))
            else:
                s = conv_svals(m.weight, size)
        rows[name] = {"step_s": med[name], "sval_min": float(s.min()), "sval_max": float(s.max())}
    return {
        "case": f"Conv {c}->{c}, 3x3, {size}x{size}, batch {batch}, one Adam step",
        "rows": rows,
    }


def throughput_layers(c: int) -> dict[str, nn.Module]:
    """Every 1-Lipschitz 3x3 stride-1 layer on c channels that we and the peers ship, and a
    plain convolution of the same shape (the reference)."""
    layers: dict[str, nn.Module] = {
        "nn.Conv2d": nn.Conv2d(c, c, 3, padding=1),
        "wgan_lip.BCOPConv2d": BCOPConv2d(c, c, 3),
        "wgan_lip.CayleyConv2d": CayleyConv2d(c, c, 3),
        "wgan_lip.AOLConv2d": AOLConv2d(c, c, 3),
        "wgan_lip.SLLConv2d": SLLConv2d(c),
    }
    try:
        from orthogonium.layers.conv.AOC.ortho_conv import AdaptiveOrthoConv2d
        from orthogonium.layers.conv.AOL.aol import AOLConv2D
        from orthogonium.layers.conv.SLL.sll_layer import SDPBasedLipschitzResBlock

        layers["orthogonium.AdaptiveOrthoConv2d"] = AdaptiveOrthoConv2d(c, c, 3)
        layers["orthogonium.AOLConv2D"] = AOLConv2D(c, c, 3, padding=1)
        layers["orthogonium.SDPBasedLipschitzResBlock"] = SDPBasedLipschitzResBlock(c, 1)
    except ImportError:
        pass
    try:
        from deel import torchlip

        layers["deel-torchlip.SpectralConv2d"] = torchlip.SpectralConv2d(c, c, 3, padding=1)
    except ImportError:
        pass
    return layers


def bench_throughput(repeats: int) -> dict:
    """Training images per second of each layer type (forward, backward, Adam), alternated."""
    c, size, batch = 32, 28, 64
    x = torch.randn(batch, c, size, size)
    layers = throughput_layers(c)
    med = alternate({k: step_fn(m, x) for k, m in layers.items()}, repeats)
    base = med["nn.Conv2d"]
    rows = {k: {"step_s": v, "images_per_s": batch / v, "vs_plain_conv": base / v}
            for k, v in med.items()}  # fmt: skip
    return {"case": f"Conv {c}->{c}, 3x3, {size}x{size}, batch {batch}: training images/s",
            "rows": rows}  # fmt: skip


def throughput_table(res: dict) -> str:
    lines = [f"\n**{res['case']}**\n", "| layer | step (ms) | images/s | vs nn.Conv2d |",
             "|---|---|---|---|"]  # fmt: skip
    for name, r in sorted(res["rows"].items(), key=lambda kv: kv[1]["step_s"]):
        lines.append(f"| {name} | {1e3 * r['step_s']:.1f} | {r['images_per_s']:.0f} | "
                     f"{r['vs_plain_conv']:.2f}x |")  # fmt: skip
    return "\n".join(lines)


def table(results: list[dict], ref: dict[str, str]) -> str:
    """Markdown: step time, ratio to the peer, orthogonality, eval forward."""
    lines = []
    for res in results:
        peer = ref[res["case"]]
        lines += [
            f"\n**{res['case']}**\n",
            f"| layer | step (ms) | step vs {peer} | orthogonality | eval forward (ms) |",
            "|---|---|---|---|---|",
        ]
        base = res["rows"].get(peer, {}).get("step_s")
        for name, r in res["rows"].items():
            ratio = f"{r['step_s'] / base:.2f}x" if base else "n/a"
            if "ortho_error" in r:
                ortho = f"max abs(s-1) = {r['ortho_error']:.1e}"
            else:
                ortho = f"s in [{r['sval_min']:.6f}, {r['sval_max']:.6f}]"
            fwd = f"{1e3 * r['eval_forward_s']:.2f}" if "eval_forward_s" in r else ""
            lines.append(f"| {name} | {1e3 * r['step_s']:.1f} | {ratio} | {ortho} | {fwd} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/layers.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    results = [bench_linear(args.repeats), bench_conv(args.repeats)]
    throughput = bench_throughput(args.repeats)
    ref = {
        results[0]["case"]: "deel-torchlip.SpectralLinear",
        results[1]["case"]: "orthogonium.AdaptiveOrthoConv2d",
    }
    for res in results:
        base = res["rows"].get(ref[res["case"]])
        for r in res["rows"].values():
            if base:
                r["step_ratio_to_peer"] = r["step_s"] / base["step_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "repeats": args.repeats, "results": results,
               "throughput": throughput}  # fmt: skip
    write_json_strict(args.out, payload, indent=2)
    print(table(results, ref))
    print(throughput_table(throughput))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
