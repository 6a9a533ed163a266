import os
import re
import stat
import subprocess
import sys

import pytest

from wgan_lip import __version__
from wgan_lip.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "usage: wgan-lip" in capsys.readouterr().out


def test_unknown_command_is_a_one_line_error_with_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "wgan_lip.cli", "frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "invalid choice" in proc.stderr or "unrecognized" in proc.stderr


# ----- wgan-lip w1 -----

import json  # noqa: E402

import numpy as np  # noqa: E402


@pytest.fixture
def pair_files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", rng.normal(size=(300, 2)))
    np.save(tmp_path / "q.npy", rng.normal(size=(300, 2)) + np.array([3.0, 4.0]))
    return tmp_path


def test_w1_json_output(pair_files, capsys):
    code = main(
        [
            "w1",
            str(pair_files / "p.npy"),
            str(pair_files / "q.npy"),
            "--json",
            "--steps",
            "200",
            "--exact",
            "--no-progress",
            "--plot",
            str(pair_files / "critic.png"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    for key in (
        "value",
        "ci_low",
        "ci_high",
        "train_value",
        "lipschitz_bound",
        "n_p",
        "n_q",
        "dim",
        "seconds",
        "certified",
        "exact_w1",
        "sliced_w1",
    ):
        assert key in result
    assert result["certified"] is True and result["n_p"] == 300 and result["dim"] == 2
    assert result["sliced_w1"] <= result["exact_w1"]
    assert 0 < result["train_value"] <= result["exact_w1"] * 1.2  # W1 ~ 5 (translation)
    assert (pair_files / "critic.png").stat().st_size > 1000


def test_w1_table_output(pair_files, capsys):
    code = main(
        [
            "w1",
            str(pair_files / "p.npy"),
            str(pair_files / "q.npy"),
            "--steps",
            "50",
            "--no-progress",
            "--holdout",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "W1 estimate" in out and "in-sample" in out and "Lipschitz bound" in out


BAD_INPUT_CASES = [
    (["missing.npy", "{d}/q.npy"], "P: no such file 'missing.npy'"),
    (["{d}/p.npy", "{d}/notes.txt"], "unknown format '.txt'"),
    (["{d}/p.npy", "{d}/wide.npy"], r"P has shape \(300, 2\), Q has shape \(300, 3\)"),
    (["{d}/nan.npy", "{d}/q.npy"], "2 of 300 samples contain NaN or Inf"),
    (["{d}/one.npy", "{d}/q.npy"], "at least 2 samples"),
    (["{d}/bad.csv", "{d}/q.npy"], "non-numeric value 'oops'"),
    (["mnistt", "{d}/q.npy"], "unknown dataset 'mnistt'; known: mnist"),
    (["mnist:3", "mnist:5", "--data-root", "{d}"], "looked for '{d}/MNIST/raw'"),
    (
        ["{d}/p.npy", "{d}/q.npy", "--exact", "--max-exact-gib", "1e-6"],
        r"need about [\d.]+ MiB, more than --max-exact-gib 1e-06 \(1\.05 KiB\)",
    ),
    (["{d}/p.npy", "{d}/q.npy", "--holdout", "abc"], "not a number"),
    (["{d}/p.npy", "{d}/q.npy", "--holdout", "1.5"], r"must be in \[0, 1\)"),
    (["{d}/p.npy", "{d}/q.npy", "--steps", "-3"], "must be positive"),
    (["{d}/p.npy", "{d}/q.npy", "--critic", "bcop"], "bcop critic needs images"),
    (["{d}/p.npy", "{d}/q.npy", "--plot", "{d}/nodir/x.png"], "does not exist"),
    (["{d}/wide.npy", "{d}/wide.npy", "--plot", "{d}/x.png"], "2-D data"),
]


@pytest.mark.parametrize(("args", "match"), BAD_INPUT_CASES)
def test_w1_bad_input_is_one_line_exit_2(pair_files, capsys, args, match):
    import re

    d = pair_files
    x = np.zeros((300, 2))
    x[[3, 7]] = np.nan
    np.save(d / "nan.npy", x)
    np.save(d / "one.npy", np.zeros((1, 2)))
    np.save(d / "wide.npy", np.zeros((300, 3)))
    (d / "notes.txt").write_text("hello")
    (d / "bad.csv").write_text("1,2\n3,oops\n")
    argv = ["w1", *[a.format(d=d) for a in args], "--no-progress", "--steps", "5"]
    code = _exit_code(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(match.format(d=d), err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (d / "x.png").exists()


def _exit_code(argv: list[str]) -> int:
    """main()'s return code, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_w1_cli_process_exit_code(pair_files):
    proc = subprocess.run(
        [sys.executable, "-m", "wgan_lip.cli", "w1", str(pair_files / "p.npy"), "nope.npy"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "wgan-lip: error: Q: no such file 'nope.npy'"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--seed", "-1"], "--seed: must be in [0, 4294967295]"),
        (["--seed", "12345678901234567890"], "--seed: must be in"),
        (["--exact", "--max-exact-gib", "nan"], "--max-exact-gib: must be a positive, finite"),
        (["--exact", "--max-exact-gib", "inf"], "--max-exact-gib: must be a positive, finite"),
        (["--exact", "--max-exact-gib", "0"], "--max-exact-gib: must be a positive, finite"),
    ],
)
def test_bad_seed_and_memory_limit_are_one_line_errors(pair_files, capsys, extra, match):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own exit, code 2
        main(["w1", str(pair_files / "p.npy"), str(pair_files / "q.npy"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and match in err[0]


def test_plot_path_that_is_a_folder_is_refused_before_training(pair_files, tmp_path, capsys):
    code = main(
        ["w1", str(pair_files / "p.npy"), str(pair_files / "q.npy"), "--plot", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from pathlib import Path

    from wgan_lip.paths import save_atomic

    old = os.umask(umask)
    try:
        out = save_atomic(lambda tmp: Path(tmp).write_text("x"), tmp_path / "plot.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["plot.png"]  # no temporary file left


def test_help_does_not_import_torch_lightning_or_pot():
    """``wgan-lip --help`` and ``w1 --help`` start fast because nothing heavy is imported
    (timed in scripts/bench_startup.py)."""
    code = (
        "import sys\n"
        "from wgan_lip.cli import main\n"
        "for argv in ([], ['w1', '--help'], ['certify', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'ot', 'scipy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
    assert "--critic" in proc.stdout and "--attack-steps" in proc.stdout


def test_every_option_has_help_text():
    from wgan_lip.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("w1", "certify"):
        for action in sub.choices[name]._actions:
            if action.dest != "help":
                assert action.help, f"wgan-lip {name} {action.option_strings or action.dest}"


# The README promises: "Every user mistake (missing file, unknown format or dataset, dimension
# mismatch, NaN or Inf rows, fewer than 2 samples, non-numeric CSV, a data root without the
# dataset, `--exact` too large) is one line on stderr and exit code 2". Each named mistake
# maps to a case of test_w1_bad_input_is_one_line_exit_2.
README_MISTAKES = {
    "missing file": "P: no such file 'missing.npy'",
    "unknown format": "unknown format '.txt'",
    "unknown dataset": "unknown dataset 'mnistt'; known: mnist",
    "dimension mismatch": r"P has shape \(300, 2\), Q has shape \(300, 3\)",
    "NaN or Inf rows": "2 of 300 samples contain NaN or Inf",
    "fewer than 2 samples": "at least 2 samples",
    "non-numeric CSV": "non-numeric value 'oops'",
    "a data root without the dataset": "looked for '{d}/MNIST/raw'",
    "`--exact` too large": r"need about [\d.]+ MiB, more than --max-exact-gib 1e-06 \(1\.05 KiB\)",
}


def test_readme_lists_exactly_the_mistakes_that_are_tested():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = " ".join(readme.read_text().split())
    listed = re.search(
        r"Every user mistake \(([^)]*)\) is one line on stderr and exit code 2", text
    )
    assert listed, "the README's promise moved: update README_MISTAKES"
    items = {s.strip() for s in listed.group(1).replace(" or dataset", "").split(",")}
    if "or dataset" in listed.group(1):  # "unknown format or dataset" names two mistakes
        items.add("unknown dataset")
    assert items == set(README_MISTAKES), items ^ set(README_MISTAKES)
    cases = {match for _, match in BAD_INPUT_CASES}
    assert set(README_MISTAKES.values()) <= cases


# ----- outputs that cannot be written: refused before training, or one line after -----


def _unwritable_folder(tmp_path):
    """A folder in which this process cannot create files (``/sys`` refuses even root),
    or skip."""
    import tempfile

    for candidate in ("/sys", "/proc"):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(probe)
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder)
    pytest.skip("no unwritable folder to test with")


def test_plot_into_an_unwritable_folder_is_refused_before_training(pair_files, tmp_path):
    folder = _unwritable_folder(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wgan_lip.cli",
            "w1",
            str(pair_files / "p.npy"),
            str(pair_files / "q.npy"),
            "--steps",
            "5",
            "--plot",
            f"{folder}/critic.png",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "--plot: cannot write to" in proc.stderr
    assert "W1 critic" not in proc.stderr  # no training started


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("json_flag", [["--json"], []])
def test_w1_output_to_a_full_disk_is_one_line_exit_2(pair_files, json_flag):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "wgan_lip.cli",
                "w1",
                str(pair_files / "p.npy"),
                str(pair_files / "q.npy"),
                "--steps",
                "5",
                "--no-progress",
                *json_flag,
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cannot write the result to standard output (No space left" in proc.stderr


# ----- wgan-lip fit | validate | test -----

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
TINY_W1 = [
    "--config",
    str(REPO / "configs/w1/sphere_d8.yaml"),
    "--data.init_args.n=200",
    "--model.init_args.network.widths=[16]",
    "--trainer.max_steps=5",
]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wgan-lip: error: "), err
    return err[0]


@pytest.mark.parametrize("command", ["validate", "test"])
def test_validate_and_test_without_a_checkpoint_are_refused(command, tmp_path, capsys):
    root = tmp_path / "run"
    code = main([command, *TINY_W1, "--trainer.default_root_dir", str(root)])
    assert code == 2 and "pass --ckpt_path" in _one_line(capsys)
    assert not root.exists()


@pytest.mark.parametrize("ckpt", ["last", "best"])
def test_fit_with_a_named_checkpoint_that_is_not_there_is_refused(ckpt, tmp_path, capsys):
    root = tmp_path / "run"
    code = main(["fit", *TINY_W1, "--trainer.default_root_dir", str(root), "--ckpt_path", ckpt])
    line = _one_line(capsys)
    assert code == 2 and f"--ckpt_path {ckpt}" in line, line
    assert not root.exists()  # refused before a fresh run started


def test_fit_into_an_unwritable_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    folder = _unwritable_folder(tmp_path)
    monkeypatch.chdir(folder)  # the config's default_root_dir is relative: runs/w1/...
    code = main(["fit", *TINY_W1])
    line = _one_line(capsys)
    assert code == 2 and "trainer.default_root_dir" in line and "cannot write" in line


def _module_configs(data_root) -> dict[str, list[str]]:
    """One tiny config of each module kind: W1 critic, WGAN, classifier."""
    gan = [
        "--config",
        str(REPO / "configs/gan/toy_25gaussians_hard.yaml"),
        "--model.init_args.architecture.critic.widths=[16]",
        "--model.init_args.architecture.generator_widths=[16]",
        "--model.init_args.evaluation.samples=200",
        "--model.init_args.evaluation.estimate_steps=5",
        "--data.init_args.n_train=512",
        "--data.init_args.n_val=200",
        "--trainer.max_steps=6",
        "--trainer.val_check_interval=5",
    ]
    clf = [
        "--config",
        str(REPO / "configs/robust/mnist_fc3_cpu.yaml"),
        "--data.init_args.dataset=uci-digits",
        f"--data.init_args.data_root={data_root}",
        "--data.init_args.n_val=200",
        "--model.init_args.network.widths=[32]",
        "--trainer.max_steps=3",
        "--trainer.limit_train_batches=3",
    ]
    return {"w1": TINY_W1, "wgan": gan, "classifier": clf}


@pytest.mark.parametrize("kind", ["w1", "wgan", "classifier"])
def test_every_module_kind_validates_its_own_checkpoint(kind, data_root, tmp_path, capsys):
    """``validate`` runs under inference mode: the WGAN's certified W1 metric trains a fresh
    critic there, which crashed with 'Inference tensors do not track version counter'."""
    root = tmp_path / kind
    args = [
        *_module_configs(data_root)[kind],
        "--trainer.default_root_dir",
        str(root),
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]
    assert main(["fit", *args]) == 0
    capsys.readouterr()
    code = main(["validate", *args, "--ckpt_path", str(root / "checkpoints/last.ckpt")])
    out, err = capsys.readouterr()
    # (not "no Traceback": in-process, Lightning's console handler may still hold an
    # earlier test's closed stderr and print a logging error)
    assert code == 0 and "Inference tensors" not in err, err[-2000:]
    assert "Validate metric" in out and "val/" in out, out


# ----- wgan-lip certify -----


def test_certify_refuses_a_plain_tensor_checkpoint_in_one_line(tmp_path, capsys):
    import torch

    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    code = main(["certify", "--checkpoint", str(tmp_path / "tensor.pt"), "--data", "uci-digits"])
    line = _one_line(capsys)
    assert code == 2 and "holds a Tensor, not a LipschitzClassifier checkpoint" in line


@pytest.mark.parametrize(
    ("flag", "value", "match"),
    [
        ("--restarts", "99999999999999999999", "must be at most 1,000"),
        ("--attack-steps", "1000000", "must be at most 10,000"),
        ("--eps", "inf", "finite"),
        ("--eps", "nan", "finite"),
    ],
)
def test_certify_refuses_an_attack_that_would_never_end(tmp_path, capsys, flag, value, match):
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--checkpoint", str(tmp_path / "c.ckpt"), "--data", "mnist", flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and flag in err[0] and match in err[0], err
