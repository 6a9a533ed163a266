"""Write a known-W1 pair of any size to disk, in bounded memory.

P = N(0, I_d) (or uniform on [-1, 1]^d) and Q = P' + s with |s| = ``--shift`` along the
diagonal, so W1(P, Q) = |s| exactly (see :class:`wgan_lip.data.Translation`). The samples
are generated and written chunk by chunk (``--chunk`` rows at a time), as float32 ``.npy``
files or folders of ``.npy`` shards with a ``manifest.json``; each file is written under a
temporary name and renamed when complete, so an interrupted run leaves nothing half-written.

    python scripts/make_large_problem.py --n 1000000 --dim 784 --out /tmp/big
    wgan-lip w1 /tmp/big/p.npy /tmp/big/q.npy

``problem.json`` in the output folder records the exact W1 and the parameters.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from wgan_lip.jsonio import dumps_strict, write_json_strict


def _chunks(n: int, chunk: int):
    for start in range(0, n, chunk):
        yield start, min(chunk, n - start)


def sample_chunk(rng: np.random.Generator, rows: int, dim: int, base: str) -> np.ndarray:
    if base == "gaussian":
        return rng.standard_normal((rows, dim), dtype=np.float32)
    return rng.uniform(-1.0, 1.0, (rows, dim)).astype(np.float32)


def write_npy(path: Path, n: int, dim: int, fill, chunk: int) -> None:
    """Write an ``(n, dim)`` float32 ``.npy`` whose rows come from ``fill(start, rows)``."""
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
        )
        for start, rows in _chunks(n, chunk):
            fh.write(np.ascontiguousarray(fill(start, rows), dtype="<f4").tobytes())
    os.replace(tmp, path)


def write_side(
    out: Path,
    name: str,
    n: int,
    dim: int,
    base: str,
    offset: np.ndarray | None,
    seed: int,
    shards: int,
    chunk: int,
) -> str:
    """Write one side (``p`` or ``q``) as a file or a shard folder; returns its path."""
    rng = np.random.default_rng(seed)

    def fill(start: int, rows: int) -> np.ndarray:
        x = sample_chunk(rng, rows, dim, base)
        return x if offset is None else x + offset

    if shards <= 1:
        path = out / f"{name}.npy"
        write_npy(path, n, dim, fill, chunk)
        return str(path)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    per = math.ceil(n / shards)
    files, rows = [], []
    for k, (_, m) in enumerate(_chunks(n, per)):
        f = f"part-{k:05d}.npy"
        write_npy(folder / f, m, dim, fill, chunk)
        files.append(f)
        rows.append(m)
    write_json_strict(folder / "manifest.json", {"shards": files, "rows": rows})
    return str(folder)


def make_problem(
    out: str | Path,
    n: int,
    dim: int = 784,
    shift: float = 1.0,
    base: str = "gaussian",
    seed: int = 0,
    shards: int = 1,
    chunk: int = 65536,
    n_q: int | None = None,
) -> dict:
    """Write P and Q under ``out`` and return the ``problem.json`` record."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_q = n if n_q is None else n_q
    direction = np.full(dim, 1.0 / math.sqrt(dim), dtype=np.float64)
    offset = (shift * direction).astype(np.float32)
    p = write_side(out, "p", n, dim, base, None, seed, shards, chunk)
    q = write_side(out, "q", n_q, dim, base, offset, seed + 1, shards, chunk)
    # |offset| in float32 is the exact W1 of the distributions the files are drawn from
    record = {
        "problem": "translation",
        "w1": float(np.linalg.norm(offset.astype(np.float64))),
        "n_p": n,
        "n_q": n_q,
        "dim": dim,
        "shift": shift,
        "base": base,
        "seed": seed,
        "shards": shards,
        "p": p,
        "q": q,
        "bytes_per_side": 4 * n * dim,
    }
    write_json_strict(out / "problem.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True, help="samples per side")
    ap.add_argument("--n-q", type=int, default=None, help="samples of Q (default --n)")
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--shift", type=float, default=1.0, help="|s| = the exact W1")
    ap.add_argument("--base", choices=("gaussian", "uniform"), default="gaussian")
    ap.add_argument("--shards", type=int, default=1, help="files per side (1: one .npy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=65536, help="rows generated at a time")
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args(argv)
    for flag, v in (
        ("--n", args.n),
        ("--dim", args.dim),
        ("--shards", args.shards),
        ("--chunk", args.chunk),
        ("--n-q", args.n_q or 2),
    ):
        if v < 1 or (flag in ("--n", "--n-q") and v < 2):
            ap.error(f"{flag} must be at least {2 if flag in ('--n', '--n-q') else 1}")
    need = 4 * args.dim * (args.n + (args.n_q or args.n))
    free = _free_bytes(Path(args.out))
    if free is not None and need > free:
        ap.error(
            f"needs {need / 2**30:.1f} GiB on disk, {args.out} has {free / 2**30:.1f} GiB free"
        )
    start = time.perf_counter()
    record = make_problem(
        args.out,
        args.n,
        args.dim,
        args.shift,
        args.base,
        args.seed,
        args.shards,
        args.chunk,
        args.n_q,
    )
    print(dumps_strict({**record, "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def _free_bytes(path: Path) -> int | None:
    p = path.resolve()
    while not p.exists():
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


if __name__ == "__main__":
    sys.exit(main())
