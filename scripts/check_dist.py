"""Build the wheel and the sdist, install each in a clean virtual environment, run them.

    python scripts/check_dist.py [--keep DIR]

``python -m build --no-isolation`` (the build backend of this environment, so no download)
writes ``wgan_lip-X.whl`` and ``wgan_lip-X.tar.gz``. For each, a fresh ``python -m venv``
gets the package installed without its dependencies; the dependencies (torch, Lightning,
POT, ...) are made importable through a ``.pth`` file pointing at this environment's
site-packages, since downloading them again would take minutes and gigabytes. Then, from an
empty working directory: ``wgan-lip --version`` must print the version, and an import test
must load wgan_lip *from the clean environment* and run a tiny certified computation. The
sdist is checked by building a wheel from its unpacked tree. Exit 0 when both pass.
"""

from __future__ import annotations

import argparse
import site
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_TEST = """
import sys, wgan_lip
from pathlib import Path
where = Path(wgan_lip.__file__).resolve()
assert Path(sys.prefix).resolve() in where.parents, f"imported from {where}"
import torch
from wgan_lip import exact_w1
from wgan_lip.layers import lipschitz_bound
from wgan_lip.models import lipschitz_mlp, sll_convnet
x = torch.zeros(4, 2)
assert abs(exact_w1(x, x + torch.tensor([3.0, 4.0])) - 5.0) < 1e-6
assert lipschitz_bound(lipschitz_mlp(4, [8], 1)) < 1.0001
assert lipschitz_bound(sll_convnet(1, 8, (4,), 3)) < 1.0001
print("import test ok", wgan_lip.__version__)
"""


def run(cmd: list[str], cwd: Path | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def check_install(artifact: Path, work: Path, version: str) -> None:
    env = work / f"venv-{artifact.suffix.strip('.')}"
    run([sys.executable, "-m", "venv", str(env)])
    py = env / "bin" / "python"
    purelib = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib.strip()) / "_deps.pth").write_text("\n".join(deps) + "\n")
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(artifact)])
    empty = work / "cwd"
    empty.mkdir(exist_ok=True)
    printed = run([str(env / "bin" / "wgan-lip"), "--version"], cwd=empty).strip()
    if printed != f"wgan-lip {version}":
        sys.exit(f"{artifact.name}: wgan-lip --version printed {printed!r}")
    print(f"{artifact.name}: {printed}; " + run([str(py), "-c", IMPORT_TEST], cwd=empty).strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="build here and keep the files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        dist = work / "dist"
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
        wheel = next(dist.glob("wgan_lip-*.whl"))
        sdist = next(dist.glob("wgan_lip-*.tar.gz"))
        version = wheel.name.split("-")[1]
        import wgan_lip  # this checkout's (installed editable)

        if version != wgan_lip.__version__:
            sys.exit(f"the wheel says {version}, wgan_lip.__version__ {wgan_lip.__version__}")
        with tarfile.open(sdist) as tar:
            names = tar.getnames()
            for needed in (
                "pyproject.toml",
                "README.md",
                "wgan_lip/__init__.py",
                "wgan_lip/layers/sll.py",
            ):
                if not any(n.endswith(needed) for n in names):
                    sys.exit(f"{sdist.name} lacks {needed}")
            tar.extractall(work / "sdist", filter="data")
        tree = next((work / "sdist").iterdir())
        run(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--wheel",
                "--outdir",
                str(work / "from-sdist"),
                str(tree),
            ]
        )
        check_install(wheel, work / "w", version)
        check_install(next((work / "from-sdist").glob("*.whl")), work / "s", version)
    print("dist check ok")


if __name__ == "__main__":
    main()
