"""Every JSON the project writes is strict: no NaN or Infinity at any depth (``null``)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from wgan_lip.cli import main
from wgan_lip.jsonio import dumps_strict, strict, write_json_strict

REPO = Path(__file__).resolve().parents[1]


def _refuse(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def strict_loads(text: str):
    """``json.loads`` that refuses NaN, Infinity and -Infinity, as strict parsers do."""
    return json.loads(text, parse_constant=_refuse)


NASTY = {
    "nan": float("nan"),
    "neg_inf": float("-inf"),
    "nested": [{"x": (np.float32("inf"), np.float64(2.5))}, {1, 2}],
    "numpy": np.array([1.0, np.nan]),
    "torch": torch.tensor([[float("inf"), 3.0]]),
    "scalar": torch.tensor(float("nan")),
    np.int64(3): np.bool_(True),
    "path": Path("a/b"),
}


def test_strict_maps_every_non_finite_number_to_null_at_any_depth():
    out = strict_loads(dumps_strict(NASTY))
    assert out["nan"] is None and out["neg_inf"] is None
    assert out["nested"] == [{"x": [None, 2.5]}, [1, 2]]
    assert out["numpy"] == [1.0, None] and out["torch"] == [[None, 3.0]]
    assert out["scalar"] is None and out["3"] is True and out["path"] == "a/b"
    assert strict(float("inf")) is None and strict(7) == 7 and strict(True) is True


def test_write_json_strict_is_whole_or_nothing(tmp_path):
    path = write_json_strict(tmp_path / "r.json", {"v": float("nan"), "ok": 1})
    assert strict_loads(path.read_text()) == {"v": None, "ok": 1}
    with pytest.raises(TypeError):  # not JSON: the old file stays, no temp file is left
        write_json_strict(path, {"v": object()})
    assert strict_loads(path.read_text()) == {"v": None, "ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_w1_json_is_strict_with_fewer_steps_than_one_evaluation(tmp_path, capsys):
    """``--steps 5`` (below the evaluation interval) printed ``-Infinity`` monitor values;
    ``--holdout 0`` has no p-value (NaN): both must come out as strict JSON."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", rng.normal(size=(200, 2)))
    np.save(tmp_path / "q.npy", rng.normal(size=(200, 2)) + 1)
    for extra in ([], ["--holdout", "0"]):
        code = main(
            [
                "w1",
                str(tmp_path / "p.npy"),
                str(tmp_path / "q.npy"),
                "--steps",
                "5",
                "--json",
                "--no-progress",
                *extra,
            ]
        )
        assert code == 0
        out = strict_loads(capsys.readouterr().out)
        assert all(v is not None for v in out["monitor_values"].values()), out
    assert out["p_value"] is None


def _json_writes(path: Path) -> list[str]:
    """Lines that write JSON with the standard library directly (doctest lines aside)."""
    found = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        code = line.strip()
        if code.startswith((">>>", "...")):
            continue
        if re.search(r"\bjson\.dumps?\(", code):
            found.append(f"{path.relative_to(REPO)}:{n}: {code}")
    return found


def test_every_json_writer_goes_through_the_strict_helper():
    files = [*sorted((REPO / "wgan_lip").rglob("*.py")), *sorted((REPO / "scripts").glob("*.py"))]
    offenders = [hit for f in files if f.name != "jsonio.py" for hit in _json_writes(f)]
    assert not offenders, "write JSON with wgan_lip.jsonio:\n" + "\n".join(offenders)


def test_an_estimates_dict_is_strict_json():
    from wgan_lip.w1.estimate import W1Estimate, W1Run

    run = W1Run(
        critic_type="family",
        critic_name="linear",
        holdout=0.2,
        n_holdout_p=1,
        n_holdout_q=1,
        stopped="max_steps",
        steps=0,
        train_seconds=math.nan,
        monitor_values={"linear": -math.inf},
    )
    est = W1Estimate(
        value=1.0,
        ci_low=math.nan,
        ci_high=math.inf,
        train_value=1.0,
        lipschitz_bound=1.0,
        n_p=2,
        n_q=2,
        dim=1,
        seconds=0.0,
        certified=True,
        critic=torch.nn.Identity(),
        run=run,
    )
    out = strict_loads(dumps_strict(est.to_dict()))
    assert out["monitor_values"] == {"linear": None} and out["ci_high"] is None


def test_written_json_gets_the_permissions_of_a_plain_open(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_json_strict(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
