"""The ``wgan-lip`` command.

``wgan-lip w1 P Q`` estimates W1 between two datasets; ``wgan-lip certify --checkpoint CKPT
--data DATASET`` certifies a trained classifier and checks it against PGD; ``wgan-lip
fit|validate|test --config FILE`` runs a LightningCLI config (see ``configs/``). User
mistakes end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import threading
from typing import NoReturn

from . import __version__
from .errors import InputError
from .jsonio import dumps_strict
from .limits import MAX_ATTACK_STEPS, MAX_RESTARTS, MAX_SEED

LIGHTNING_COMMANDS = ("fit", "validate", "test")
SLICED_ROWS = 20_000  # per side: sliced W1 of larger sources is computed on a subsample


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str) -> int:
    print(f"wgan-lip: error: {message}", file=sys.stderr)
    return 2


def _parse(text: str, cast):
    """``cast(text)``, or the parser's one-line error naming what was expected."""
    try:
        return cast(text)
    except ValueError:
        what = "an integer" if cast is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def _fraction(text: str) -> float:
    value = _parse(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _parse(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _int_up_to(top: int):
    """An argparse type: a positive integer of at most ``top``."""

    def parse(text: str) -> int:
        value = _positive_int(text)
        if value > top:
            raise argparse.ArgumentTypeError(f"must be at most {top:,}, got {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    """``--max-time``: a positive number of seconds."""
    value = _parse(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _seed(text: str) -> int:
    value = _parse(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}], got {text}")
    return value


def _gib(text: str) -> float:
    value = _parse(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of GiB, got {text}")
    return value


def _radius(text: str) -> float:
    value = _parse(text, float)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"radii must be finite and >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .w1.names import CRITICS

    parser = _Parser(
        prog="wgan-lip",
        description="Certified 1-Lipschitz networks: W1 estimation, WGANs, robust classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"wgan-lip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    w1 = sub.add_parser(
        "w1",
        help="estimate W1 between two datasets (certified lower bound + 95%% CI)",
        description=(
            "Estimate W1(P, Q) with a 1-Lipschitz critic evaluated on held-out samples. "
            "P and Q: .npy, .npz or .pt (one array, or file.npz:key / file.pt:key), .csv "
            "files, folders of .npy shards, image folders, or "
            "datasets from the data root: mnist, mnist:3, fashion-mnist:train:7, "
            "cifar10-subset, uci-digits. .npy files and shard folders are memory-mapped and "
            "streamed, so they may be larger than memory. Ctrl-C stops training and reports "
            "the estimate so far (exit code 130)."
        ),
    )
    w1.add_argument("p", metavar="P", help="samples of P (file, folder or dataset name)")
    w1.add_argument("q", metavar="Q", help="samples of Q")
    w1.add_argument(
        "--critic",
        choices=CRITICS,
        default=None,
        help="critic (default: family, certified critics trained together, the "
        "simplest within one standard error of the best on the monitor split is "
        "reported; groupsort and bcop are single certified networks; gp, lp, sn, clip "
        "are uncertified baselines)",
    )
    w1.add_argument(
        "--network",
        metavar="JSON",
        help='a single critic\'s network as JSON, e.g. \'{"linear": "aol", "widths": [64, 64]}\' '
        "(keys: kind, widths, channels, linear, conv, activation, group_size, ...); a "
        "certified critic refuses a layer that is not 1-Lipschitz by construction. A family "
        "member names its layer instead: mlp:128x3:maxmin:aol",
    )
    w1.add_argument(
        "--linear",
        metavar="LAYER",
        help="the single critic's dense layer (bjorck, aol, sll, ...; --network)",
    )
    w1.add_argument(
        "--conv",
        metavar="LAYER",
        help="the single critic's convolution (bcop, cayley, aol, ...; --network)",
    )
    w1.add_argument(
        "--activation",
        metavar="NAME",
        help="the single critic's activation (groupsort, maxmin, fullsort, ...)",
    )
    w1.add_argument(
        "--folds",
        type=_positive_int,
        default=1,
        help="cross-fitting: K folds, every sample held out once (default 1: one split, --holdout)",
    )
    w1.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="maximum training steps (default 10000, stops on a plateau)",
    )
    w1.add_argument(
        "--holdout",
        type=_fraction,
        default=0.2,
        help="fraction held out for the reported value (default 0.2)",
    )
    w1.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="samples per side per step (default: all fit samples up to 1024 "
        "per side, else 512; 128 for bcop)",
    )
    w1.add_argument(
        "--exact", action="store_true", help="also compute the exact W1 of the two samples (POT)"
    )
    w1.add_argument(
        "--max-exact-gib", type=_gib, default=4.0, help="memory limit for --exact (default 4 GiB)"
    )
    w1.add_argument("--json", action="store_true", help="print one JSON object")
    w1.add_argument("--plot", metavar="FILE", help="2-D data: samples over critic level sets")
    w1.add_argument(
        "--data-root", metavar="DIR", help="folder with the named datasets (default $WGAN_LIP_DATA)"
    )
    w1.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help=f"random seed: fixes the split, the initialization and the batches "
        f"(0..{MAX_SEED}, default 0)",
    )
    w1.add_argument(
        "--max-time",
        type=_seconds,
        metavar="SECONDS",
        help="training time budget of the whole run, split evenly over the folds; the answer "
        "at the budget is still certified, with its CI (default: no budget)",
    )
    w1.add_argument(
        "--no-race",
        action="store_true",
        help="train every family member to the end (default: a member that can no longer "
        "be reported stops training, and the run ends when none is left)",
    )
    w1.add_argument("--no-progress", action="store_true", help="no progress bar")

    cert = sub.add_parser(
        "certify",
        help="certified / attacked accuracy of a trained classifier at L2 radii",
        description=(
            "Certify a LipschitzClassifier checkpoint: per L2 radius, clean, certified and "
            "PGD-attacked accuracy, the Lipschitz bound used, and violations (certified yet "
            "broken by the attack: a bug, exit code 1)."
        ),
    )
    cert.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="LipschitzClassifier checkpoint (.ckpt of wgan-lip fit)",
    )
    cert.add_argument(
        "--data",
        required=True,
        metavar="DATASET",
        help="mnist, fashion-mnist, cifar10-subset, uci-digits (test split)",
    )
    cert.add_argument("--data-root", metavar="DIR", help="default $WGAN_LIP_DATA")
    cert.add_argument(
        "--eps",
        type=_radius,
        nargs="+",
        default=[0.3, 1.0, 1.58],
        help="L2 radii (default 0.3 1.0 1.58)",
    )
    cert.add_argument(
        "--attack",
        choices=("pgd", "none"),
        default="pgd",
        help="L2 PGD attack that checks every certificate (default pgd; none skips it)",
    )
    cert.add_argument(
        "--attack-steps",
        type=_int_up_to(MAX_ATTACK_STEPS),
        default=50,
        help=f"PGD steps per restart (default 50, at most {MAX_ATTACK_STEPS:,})",
    )
    cert.add_argument(
        "--restarts",
        type=_int_up_to(MAX_RESTARTS),
        default=3,
        help=f"PGD random restarts (default 3, at most {MAX_RESTARTS:,})",
    )
    cert.add_argument(
        "--n",
        type=_positive_int,
        default=None,
        help="certify the first N test images (default all)",
    )
    cert.add_argument("--json", action="store_true", help="print one JSON object")
    cert.add_argument("--no-progress", action="store_true", help="no progress bar of the attack")

    for name in LIGHTNING_COMMANDS:
        sub.add_parser(
            name, help=f"LightningCLI {name} --config FILE (see configs/)", add_help=False
        )
    return parser


def _size(n_bytes: float) -> str:
    """``n_bytes`` in the largest binary unit that keeps a number >= 1 (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@contextlib.contextmanager
def _ctrl_c_after_imports():
    """Hold a Ctrl-C that arrives while torch, Lightning or POT are being imported, and raise
    it once they are: a KeyboardInterrupt inside an extension module's import can surface as
    an ImportError that a library catches, leaving half-imported modules and a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hits: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hits:
        raise KeyboardInterrupt


def _network_option(args: argparse.Namespace, critic: str) -> dict | None:
    """``--network`` JSON with ``--linear``, ``--conv``, ``--activation`` merged in, checked
    (against the critic's constraint too) before any data is read; None when none is given."""
    import json

    network = {}
    if args.network:
        try:
            network = json.loads(args.network)
        except ValueError as e:
            raise InputError(f"--network: not JSON ({e})") from None
        if not isinstance(network, dict):
            raise InputError('--network must be a JSON object, e.g. \'{"linear": "aol"}\'')
    for key in ("linear", "conv", "activation"):
        if getattr(args, key):
            network[key] = getattr(args, key)
    if not network:
        return None
    if critic == "family":
        raise InputError(
            "--network, --linear, --conv and --activation choose a single "
            "critic's layers: add --critic groupsort (or bcop, gp, ...)"
        )
    from .w1.critics import check_critic_network

    check_critic_network(critic, network)
    return network


def run_w1(args: argparse.Namespace) -> int:
    with _ctrl_c_after_imports():
        from .data.sources import load_pair
        from .ot import exact_w1, exact_w1_bytes, sliced_w1
        from .w1.estimate import estimate_w1
        from .w1.plot import check_plot_path, plot_critic_2d

    critic = args.critic or "family"
    network = _network_option(args, critic)
    p, q = load_pair(args.p, args.q, data_root=args.data_root)
    max_bytes = int(args.max_exact_gib * 2**30)
    # Everything that can be refused is refused before training starts.
    if args.exact and p.dim > 1 and exact_w1_bytes(p.n, q.n) > max_bytes:
        raise InputError(
            f"--exact: {p.n:,} x {q.n:,} samples need about "
            f"{_size(exact_w1_bytes(p.n, q.n))}, more than --max-exact-gib "
            f"{args.max_exact_gib:g} ({_size(max_bytes)}); raise it, drop --exact or subsample"
        )
    if args.plot:
        check_plot_path(args.plot)
        if p.dim != 2:
            raise InputError(f"--plot draws 2-D data; these samples have {p.dim} dimensions")

    est = estimate_w1(
        p,
        q,
        critic={"name": critic, "race": False} if args.no_race else critic,
        network=network,
        holdout=args.holdout,
        steps=args.steps,
        folds=args.folds,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
        trainer=None
        if args.max_time is None
        else {"max_time": dt.timedelta(seconds=args.max_time / args.folds)},
    )
    # float64 rows, centred in the data's own precision: the offset cancels in W1
    sliced = sliced_w1(
        p.exact_flat(SLICED_ROWS, args.seed),
        q.exact_flat(SLICED_ROWS, args.seed + 1),
        seed=args.seed,
    )
    sliced_note = "500 projections" + (
        f", {SLICED_ROWS:,} samples per side" if max(p.n, q.n) > SLICED_ROWS else ""
    )
    exact = exact_w1(p.exact_flat(), q.exact_flat(), max_bytes=max_bytes) if args.exact else None
    if args.plot:  # in the user's coordinates: est.critic puts the common offset back
        offset = getattr(p.rows, "offset", None)
        shift = 0.0 if offset is None else offset.reshape(1, -1)
        plot_critic_2d(
            est.critic,
            p.exact_flat() + shift,
            q.exact_flat() + shift,
            args.plot,
            title=f"{critic} critic: W1 >= {est.value:.4g}",
        )

    result = {"p": p.description, "q": q.description, **est.to_dict(), "sliced_w1": sliced}
    if exact is not None:
        result["exact_w1"] = exact
    if args.json:
        _write_stdout(dumps_strict(result))
        return _interrupted_exit(est)
    kind = "certified" if est.certified else "NOT certified (penalty/clipping critic)"
    if est.critic_name and est.critic_name != critic:
        kind += f"; {est.critic_name} won on the monitor split"
    held = f"held-out, {est.n_holdout_p:,} + {est.n_holdout_q:,} samples" + (
        f", {est.folds} folds" if est.folds > 1 else ""
    )
    rows = [
        ("P", f"{p.description}  ({p.n:,} samples, dim {p.dim})"),
        ("Q", f"{q.description}  ({q.n:,} samples, dim {q.dim})"),
        ("critic", f"{critic}, {kind}"),
        (
            "W1 estimate",
            f"{est.value:.6g}  ({held})"
            if est.holdout
            else f"{est.value:.6g}  (in-sample, holdout=0)",
        ),
        ("95% CI", f"[{est.ci_low:.6g}, {est.ci_high:.6g}]"),
        (
            "p-value (P = Q)",
            f"{est.p_value:.4g}  (permutation test of the held-out scores)"
            if est.holdout
            else "n/a (in-sample, holdout=0)",
        ),
        ("train value", f"{est.train_value:.6g}"),
        ("Lipschitz bound", f"{est.lipschitz_bound:.6f}"),
        ("sliced W1", f"{sliced:.6g}  (lower bound, {sliced_note})"),
    ]
    if exact is not None:
        rows.append(("exact W1 (POT)", f"{exact:.6g}  (of these two samples)"))
    rows.append(("steps / time", f"{est.steps} ({est.stopped}), {est.seconds:.1f} s"))
    if args.plot:
        rows.append(("plot", args.plot))
    _write_stdout(_table(rows))
    return _interrupted_exit(est)


def _write_stdout(text: str) -> None:
    """Print ``text`` (and a newline) whole and flushed, so that a standard output that
    cannot take it (a full disk, ``> /dev/full``, a closed pipe) is a one-line
    :class:`InputError` here, not a traceback at interpreter exit."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as e:
        _silence_stdout()
        raise InputError(
            f"cannot write the result to standard output ({e.strerror or type(e).__name__}); "
            "free some space or redirect it elsewhere"
        ) from None


def _silence_stdout() -> None:
    """Point standard output at the null device: what is still buffered must not fail
    again (with a traceback) when the interpreter flushes it on exit."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file (captured in a test)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _interrupted_exit(est) -> int:
    """Exit 130 (as after SIGINT) when Ctrl-C cut training short; the result is printed."""
    if est.stopped != "interrupted":
        return 0
    print(
        "wgan-lip: interrupted: the estimate above comes from a critic trained for "
        f"{est.steps} steps only (still a certified lower bound)",
        file=sys.stderr,
    )
    return 130


def run_certify(args: argparse.Namespace) -> int:
    with _ctrl_c_after_imports():
        from .robust.certify import certify
        from .robust.checkpoint import load_classifier
        from .robust.data import load_split

    model = load_classifier(args.checkpoint)
    data = load_split(args.data, "test", args.data_root)
    images, labels = data.images, data.labels
    if args.n is not None:
        images, labels = images[: args.n], labels[: args.n]
    expected = tuple(model.hparams.input_shape)
    if tuple(images.shape[1:]) != expected:
        raise InputError(
            f"--data {args.data}: images of shape {tuple(images.shape[1:])}, but the checkpoint "
            f"was trained on {expected}"
        )
    report = certify(
        model.net,
        images,
        labels,
        args.eps,
        attack=None if args.attack == "none" else "pgd",
        attack_steps=args.attack_steps,
        attack_restarts=args.restarts,
        progress=not args.no_progress,
    )
    if args.json:
        _write_stdout(
            dumps_strict({"checkpoint": args.checkpoint, "data": args.data, **report.to_dict()})
        )
    else:
        lines = [
            f"checkpoint       {args.checkpoint}",
            f"data             {args.data} test, {report.n:,} images",
            f"Lipschitz bound  {report.lipschitz_bound:.6f}",
            f"clean accuracy   {report.clean:.4f}",
            "eps (L2)  certified  attacked  violations",
        ]
        for r in report.radii:
            attacked = "-" if r.attacked is None else f"{r.attacked:.4f}"
            lines.append(f"{r.eps:<9g} {r.certified:<10.4f} {attacked:<9} {r.violations}")
        _write_stdout("\n".join(lines))
    if report.violations:
        message = (
            f"{report.violations} certified predictions were broken by the attack: "
            "the certificate is unsound (please report this)"
        )
        print(f"wgan-lip: error: {message}", file=sys.stderr)
        return 1
    return 0


def run_lightning(argv: list[str]) -> int:
    with _ctrl_c_after_imports():
        from .lightning_cli import main as lightning_main

    code = lightning_main(argv)
    if code == 130:
        print(
            "wgan-lip: interrupted (the checkpoints written so far are kept; resume with "
            "--ckpt_path last)",
            file=sys.stderr,
        )
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 done, 1 failure, 2 a user
    mistake, 130 Ctrl-C), with one line on stderr for each error."""
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # also while torch / Lightning are still being imported
        print("wgan-lip: interrupted", file=sys.stderr)
        code = 130
    except InputError as e:
        return _fail(str(e))
    if code == 130 and argv is None and threading.current_thread() is threading.main_thread():
        # As a program (argv from sys.argv): the run is over and said so; a further Ctrl-C
        # during interpreter shutdown (torch's finalizers take a moment) must not turn exit
        # code 130 into death by SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: list[str]) -> int:
    if argv and argv[0] in LIGHTNING_COMMANDS:
        try:
            return run_lightning(argv)
        except FloatingPointError as e:  # a diverged run: not a user mistake, but no traceback
            print(f"wgan-lip: training failed: {e}", file=sys.stderr)
            return 1
    parser = build_parser()
    args = parser.parse_args(argv)  # unknown commands exit 2 with a one-line message
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "w1":
        return run_w1(args)
    if args.command == "certify":
        return run_certify(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
