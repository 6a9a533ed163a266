"""Memory-mapped row sources: same rows as the arrays, bounded memory, clear errors."""

import json
import pickle

import numpy as np
import pytest
import torch

from wgan_lip.data import rows as rows_mod
from wgan_lip.data.rows import NpyRows, TensorRows
from wgan_lip.data.sources import load_pair, load_samples
from wgan_lip.errors import InputError


def _write_shards(folder, x, sizes, manifest=False, dtype=np.float32):
    folder.mkdir()
    names, start = [], 0
    for k, m in enumerate(sizes):
        names.append(f"part-{k:03d}.npy")
        np.save(folder / names[-1], x[start : start + m].astype(dtype))
        start += m
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({"shards": names, "rows": sizes}))
    return names


def test_file_and_shards_read_the_same_rows_as_the_array(tmp_path):
    x = np.random.default_rng(0).normal(size=(103, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    _write_shards(tmp_path / "shards", x, [40, 1, 62])
    (tmp_path / "shards" / "part-002.npy").unlink()  # shards may differ in dtype
    np.save(tmp_path / "shards" / "part-002.npy", x[41:].astype(np.float64))
    ref = torch.from_numpy(x).float()
    idx = torch.tensor([102, 0, 40, 41, 39, 7, 7, 101])  # any order, repeats, shard edges
    for src in (NpyRows(tmp_path / "x.npy"), NpyRows(tmp_path / "shards")):
        assert src.n == 103 and src.event_shape == (5,) and src.streamed
        assert torch.equal(src.take(idx), ref[idx])
        assert torch.equal(src.read(95, 200), ref[95:])
        assert torch.equal(src.all(), ref)


def test_dtypes_and_shapes_follow_the_in_memory_rules(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 255, size=(6, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "img.npy", imgs)
    np.save(tmp_path / "vec.npy", np.arange(5.0))
    s = load_samples(tmp_path / "img.npy")
    assert s.streamed and s.is_image and s.event_shape == (1, 4, 4)
    assert torch.equal(s.data, torch.from_numpy(imgs).float()[:, None])
    assert load_samples(tmp_path / "vec.npy").event_shape == (1,)
    # same size: viewed flat (float32 zeros: float32 holds both sides, nothing is centred)
    p, _ = load_pair(tmp_path / "img.npy", np.zeros((3, 16), dtype=np.float32))
    assert p.event_shape == (16,) and p.streamed
    assert torch.equal(
        p.take(torch.tensor([2])), torch.from_numpy(imgs[2:3]).float().reshape(1, 16)
    )


def test_a_shard_folder_is_a_source_and_pickles_without_its_maps(tmp_path):
    x = np.random.default_rng(2).normal(size=(30, 3)).astype(np.float32)
    _write_shards(tmp_path / "d", x, [10, 10, 10], manifest=True)
    s = load_samples(tmp_path / "d")
    assert s.streamed and s.n == 30 and "3 shards" in s.description
    s.take(torch.tensor([1, 2]))  # opens the maps
    again = pickle.loads(pickle.dumps(s.rows))
    assert again.inner._maps is None
    assert torch.equal(again.take(torch.arange(30)), torch.from_numpy(x))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (
            lambda d: (d / "part-001.npy").unlink(),
            r"shard 1 is missing .*part-000.npy then part-002",
        ),
        (
            lambda d: np.save(d / "part-001.npy", np.zeros((5, 4), np.float32)),
            r"shard 'part-001.npy' has samples of shape \(4,\), but 'part-000.npy' has \(3,\)",
        ),
        (
            lambda d: (d / "part-002.npy").write_bytes((d / "part-002.npy").read_bytes()[:150]),
            r"cannot read '.*part-002.npy' as .npy",
        ),
    ],
)
def test_damaged_shard_folders_are_refused_before_training(tmp_path, damage, match):
    x = np.zeros((30, 3))
    _write_shards(tmp_path / "d", x, [10, 10, 10])
    damage(tmp_path / "d")
    with pytest.raises(InputError, match=match) as exc:
        load_samples(tmp_path / "d", name="P")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("P: ")


def test_manifest_names_missing_shards_and_wrong_row_counts(tmp_path):
    x = np.zeros((30, 3))
    names = _write_shards(tmp_path / "d", x, [10, 10, 10], manifest=True)
    (tmp_path / "d" / names[2]).rename(tmp_path / "d" / "other.npy")
    with pytest.raises(InputError, match=r"part-002\.npy' listed in manifest.json is missing"):
        NpyRows(tmp_path / "d")
    (tmp_path / "d" / "other.npy").rename(tmp_path / "d" / names[2])
    (tmp_path / "d" / "manifest.json").write_text(
        json.dumps({"shards": names, "rows": [10, 9, 10]})
    )
    with pytest.raises(InputError, match=r"'part-001\.npy' has 10 rows, manifest\.json says 9"):
        NpyRows(tmp_path / "d")


def test_nan_rows_of_large_files_are_reported_when_read(tmp_path, monkeypatch):
    x = np.ones((50, 2), np.float32)
    x[37, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(InputError, match="1 of 50 samples contain NaN"):
        NpyRows(tmp_path / "x.npy")  # small: scanned when opened
    monkeypatch.setattr(rows_mod, "CHECK_UP_FRONT_BYTES", 0)
    src = NpyRows(tmp_path / "x.npy")  # "large": checked as rows are read
    assert torch.equal(src.take(torch.arange(30)), torch.ones(30, 2))
    with pytest.raises(InputError, match=r"sample 37 .*contains NaN or Inf"):
        src.take(torch.tensor([3, 37]))


def _rss_file_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")


def test_reading_a_whole_file_keeps_resident_memory_bounded(tmp_path):
    rows, dim = 80_000, 784  # 251 MB of float32
    fh = open(tmp_path / "big.npy", "wb")
    np.lib.format.write_array_header_1_0(
        fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}
    )
    block = np.ones((8000, dim), np.float32)
    for _ in range(rows // 8000):
        fh.write(block.tobytes())
    fh.close()
    src = NpyRows(tmp_path / "big.npy")
    before = _rss_file_kib()
    peak = before
    gen = torch.Generator().manual_seed(0)
    for start in range(0, rows, 4096):  # sequential, as the held-out scoring reads
        src.read(start, start + 4096)
        peak = max(peak, _rss_file_kib())
    for _ in range(50):  # scattered, as shuffled batches read
        src.take(torch.randint(0, rows, (512,), generator=gen))
        peak = max(peak, _rss_file_kib())
    assert (peak - before) / 1024 < 64, f"mapped pages grew by {(peak - before) / 1024:.0f} MiB"


def test_tensor_rows_are_views_of_the_tensor():
    x = torch.arange(12.0).reshape(6, 2)
    r = TensorRows(x)
    assert r.all() is x and torch.equal(r.take(torch.tensor([5, 0])), x[[5, 0]])
    assert r.with_event_shape((2, 1)).event_shape == (2, 1)
