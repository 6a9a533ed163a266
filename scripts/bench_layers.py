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
from pathlib import Path

import torch
from _bench import alternate, conv_svals, machine, peer_conv, peer_linear, step_fn, sval_error
from torch import nn

from wgan_lip.jsonio import write_json_strict
from wgan_lip.layers import AOLConv2d, BCOPConv2d, BjorckLinear, CayleyConv2d, SLLConv2d


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
    rows = {
        k: {"step_s": v, "images_per_s": batch / v, "vs_plain_conv": base / v}
        for k, v in med.items()
    }
    return {
        "case": f"Conv {c}->{c}, 3x3, {size}x{size}, batch {batch}: training images/s",
        "rows": rows,
    }


def throughput_table(res: dict) -> str:
    lines = [
        f"\n**{res['case']}**\n",
        "| layer | step (ms) | images/s | vs nn.Conv2d |",
        "|---|---|---|---|",
    ]
    for name, r in sorted(res["rows"].items(), key=lambda kv: kv[1]["step_s"]):
        lines.append(
            f"| {name} | {1e3 * r['step_s']:.1f} | {r['images_per_s']:.0f} | "
            f"{r['vs_plain_conv']:.2f}x |"
        )
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
    payload = {
        "machine": machine(),
        "repeats": args.repeats,
        "results": results,
        "throughput": throughput,
    }
    write_json_strict(args.out, payload, indent=2)
    print(table(results, ref))
    print(throughput_table(throughput))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
