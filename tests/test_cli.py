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
