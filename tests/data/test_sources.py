import numpy as np
import pytest
import torch

from wgan_lip.data.sources import load_pair, load_samples
from wgan_lip.errors import InputError


def test_arrays_tensors_and_files_agree(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "one.npz", data=x)
    np.savez(tmp_path / "two.npz", x=x, y=x + 1)
    torch.save(torch.from_numpy(x), tmp_path / "a.pt")
    torch.save({"samples": torch.from_numpy(x)}, tmp_path / "d.pt")
    np.savetxt(tmp_path / "a.csv", x, delimiter=",", header="u,v,w", comments="")
    ref = torch.from_numpy(x).float()
    for src in (
        x,
        torch.from_numpy(x),
        tmp_path / "a.npy",
        str(tmp_path / "one.npz"),
        f"{tmp_path / 'two.npz'}:x",
        tmp_path / "a.pt",
        tmp_path / "d.pt",
        tmp_path / "a.csv",
    ):
        s = load_samples(src)
        assert s.data.dtype == torch.float32 and torch.allclose(s.data, ref, atol=1e-6), src
    assert torch.allclose(load_samples(f"{tmp_path / 'two.npz'}:y").data, ref + 1)


def test_shapes_vectors_and_images():
    assert load_samples(np.arange(5.0)).data.shape == (5, 1)
    img = load_samples(np.zeros((4, 6, 6)))
    assert img.is_image and img.data.shape == (4, 1, 6, 6) and img.dim == 36
    p, q = load_pair(np.zeros((4, 1, 3, 3)), np.ones((5, 9)))  # same size: both flattened
    assert p.data.shape == (4, 9) and q.data.shape == (5, 9)


def test_image_folder(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((5, 4), 60 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    s = load_samples(tmp_path)
    assert s.data.shape == (3, 1, 5, 4)
    assert s.data[2].max().item() == pytest.approx(120 / 255)
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(InputError, match="differ in size") as exc:
        load_samples(tmp_path)
    assert "'0.png' is 4x5 grayscale, 'odd.png' is 3x3 grayscale; resize" in str(exc.value)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: str(d / "missing.npy"), "no such file"),
        (lambda d: (d / "a.txt").write_text("1,2") and str(d / "a.txt"), "unknown format '.txt'"),
        (lambda d: "mnistt", r"unknown dataset 'mnistt'; known: mnist, fashion-mnist"),
        (lambda d: (d / "b.csv").write_text("1,2\n3,x\n") and str(d / "b.csv"), "line 2, column 2"),
        (
            lambda d: np.array([[1.0, np.nan], [np.inf, 0], [1, 1]]),
            "2 of 3 samples contain NaN or Inf, the first is row 0",
        ),
        (lambda d: np.zeros((1, 3)), "at least 2 samples"),
        (lambda d: np.zeros((2, 2, 2, 2, 2)), "expected"),
        (lambda d: np.array(["a", "b"]), "numeric"),
        (lambda d: [[1.0, 2.0], [3.0]], "cannot make an array .*; give every sample the same"),
    ],
)
def test_bad_sources_are_one_line_input_errors(tmp_path, make, match):
    with pytest.raises(InputError, match=match) as exc:
        load_samples(make(tmp_path), data_root=tmp_path)
    assert "\n" not in str(exc.value)


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    np.savez(tmp_path / "two.npz", x=np.zeros((3, 2)), y=np.zeros((3, 2)))
    with pytest.raises(InputError, match="holds 2 arrays"):
        load_samples(tmp_path / "two.npz")
    with pytest.raises(InputError, match="no array 'z'"):
        load_samples(f"{tmp_path / 'two.npz'}:z")


def test_dimension_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"P has shape \(4, 3\), Q has shape \(5, 2\)"):
        load_pair(np.zeros((4, 3)), np.zeros((5, 2)))


def test_named_datasets_with_class_filters(data_root):
    three = load_samples("mnist:3", data_root=data_root)
    assert three.data.shape == (6131, 1, 28, 28)  # the MNIST training set has 6,131 threes
    assert 0.0 <= three.data.min() and three.data.max() <= 1.0
    test7 = load_samples("mnist:test:7", data_root=data_root)
    assert test7.n == 1028
    digits = load_samples("uci-digits:test", data_root=data_root)
    assert digits.data.shape == (1797, 1, 8, 8)
    with pytest.raises(InputError, match="classes 0-9, got 12"):
        load_samples("mnist:12", data_root=data_root)


def test_data_root_without_the_dataset_says_where_it_looked(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=f"looked for '{tmp_path}/FashionMNIST/raw'"):
        load_samples("fashion-mnist:7", data_root=tmp_path)
    monkeypatch.delenv("WGAN_LIP_DATA", raising=False)
    with pytest.raises(InputError, match="--data-root"):
        load_samples("mnist")


def _one_line_error(src, match, **kw) -> str:
    with pytest.raises(InputError, match=match) as exc:
        load_samples(src, **kw)
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def test_pt_dict_entries_are_picked_by_key_like_npz(tmp_path):
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    pt = tmp_path / "x.pt"
    torch.save({"a": a, "b": b, "note": "hello"}, pt)
    assert torch.equal(load_samples(f"{pt}:a").data, a)
    assert torch.equal(load_samples(f"{pt}:b").data, b)
    msg = _one_line_error(pt, r"holds a dict with tensors 'a', 'b': pick one as .*x\.pt:a$")
    assert "'note'" not in msg  # only tensor entries are offered
    _one_line_error(f"{pt}:z", r"has no key 'z'; its keys are 'a', 'b', 'note'")
    _one_line_error(f"{pt}:note", r"entry 'note' is a str, not a tensor; its tensors are 'a'")
    torch.save({"samples": a, "epoch": 3}, tmp_path / "one.pt")  # one tensor: used directly
    assert torch.equal(load_samples(tmp_path / "one.pt").data, a)
    torch.save(a, tmp_path / "plain.pt")
    _one_line_error(f"{tmp_path / 'plain.pt'}:a", r"holds a Tensor, not a dict, so it has no key")
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    _one_line_error(tmp_path / "meta.pt", r"holds a dict without tensors \(keys 'epoch'\)")
    torch.save({f"k{i}": a for i in range(12)}, tmp_path / "many.pt")
    _one_line_error(tmp_path / "many.pt", r"'k7' and 4 more: pick one as .*many\.pt:k0")
    # .npz says the same
    np.savez(tmp_path / "two.npz", x=np.zeros((3, 2)), y=np.ones((3, 2)))
    _one_line_error(tmp_path / "two.npz", r"holds 2 arrays 'x', 'y': pick one as .*two\.npz:x$")
    _one_line_error(f"{tmp_path / 'two.npz'}:z", r"has no array 'z'; it has 'x', 'y'")


def test_unreadable_pt_files_are_one_line_and_never_unpickled(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" + np.random.default_rng(0).bytes(999))
    msg = _one_line_error(garbage, r"'.*garbage\.pt' is not a readable torch file \(neither a zip")
    assert "weights_only" not in msg
    # random bytes after a pickle protocol byte: torch's reason, first line only
    (tmp_path / "pickleish.pt").write_bytes(b"\x80\x02" + np.random.default_rng(1).bytes(99))
    msg = _one_line_error(tmp_path / "pickleish.pt", r"is not a readable torch file \(\w")
    assert "weights_only" not in msg and "PyTorch 2.6" not in msg and len(msg) < 300
    torch.save(torch.zeros(4, 2), tmp_path / "full.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:200])
    msg = _one_line_error(tmp_path / "cut.pt", r"not a readable torch file .*truncated or damaged")
    assert "miniz" not in msg
    torch.save({"x": np.zeros((4, 2))}, tmp_path / "numpy.pt")
    msg = _one_line_error(
        tmp_path / "numpy.pt", r"holds a numpy\..* object, which is not unpickled"
    )
    assert "torch.from_numpy" in msg and "weights_only" not in msg


def test_symlink_loops_and_broken_links_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "a").symlink_to("b")
    _one_line_error("a", r"^P: 'a' is a symlink loop \(a -> b -> a\); point it at a real file$")
    (tmp_path / "y.npy").symlink_to("x.npy")
    (tmp_path / "x.npy").symlink_to("y.npy")
    _one_line_error(str(tmp_path / "x.npy"), r"x\.npy' is a symlink loop \(.*x\.npy -> .*y\.npy")
    (tmp_path / "dangling.npy").symlink_to("nowhere.npy")
    _one_line_error("dangling.npy", r"'dangling.npy' is a broken symlink to 'nowhere.npy'")
    _one_line_error("missing.npy", r"^P: no such file 'missing.npy'$")


def test_nan_and_inf_name_the_first_bad_row_and_the_file(tmp_path, monkeypatch):
    x = np.ones((10, 2))
    x[[4, 7], 1] = [np.inf, np.nan]
    _one_line_error(x, r"^P: 2 of 10 samples contain NaN or Inf, the first is row 4; remove")
    np.save(tmp_path / "x.npy", x)
    msg = _one_line_error(tmp_path / "x.npy", "2 of 10 samples contain NaN or Inf, the first is")
    assert msg.endswith(f"row 4 of {str(tmp_path / 'x.npy')!r}; remove or fix those rows")
    torch.save(torch.from_numpy(x), tmp_path / "x.pt")
    _one_line_error(tmp_path / "x.pt", r"the first is row 4 of '.*x\.pt'")
    np.savez(tmp_path / "x.npz", a=x, b=x)
    _one_line_error(f"{tmp_path / 'x.npz'}:b", r"the first is row 4 of '.*x\.npz:b'")
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="u,v", comments="")
    _one_line_error(tmp_path / "x.csv", r"the first is row 4 \('.*x\.csv' line 6\)")
    with pytest.raises(InputError, match=r"^Q: 2 of 10 samples .* row 4 of '.*x\.npy'") as exc:
        load_pair(np.zeros((5, 2)), tmp_path / "x.npy")
    assert "\n" not in str(exc.value)
    # shards: the shard and its row, and the sample number in the whole set
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "part-0.npy", np.ones((3, 2)))
    np.save(tmp_path / "d" / "part-1.npy", x)
    _one_line_error(tmp_path / "d", r"the first is row 4 of shard '.*part-1\.npy' \(sample 7\)")
    # files too large to scan up front: reported when the row is read
    from wgan_lip.data import rows

    monkeypatch.setattr(rows, "CHECK_UP_FRONT_BYTES", 0)
    src = load_samples(tmp_path / "x.npy")
    with pytest.raises(InputError, match=r"^P: sample 7 \(row 7 of '.*x\.npy'\) contains NaN"):
        src.take(torch.tensor([0, 7]))


def test_ragged_csv_names_the_line_and_the_field_counts(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("a,b,c\n1,2,3\n\n4,5,6\n7,8\n9,10,11\n")
    _one_line_error(f, r"^P: '.*r\.csv' line 5 has 2 fields, expected 3 like line 2; ")
    f.write_text("1,2\n3,4,5\n")
    _one_line_error(f, r"line 2 has 3 fields, expected 2 like line 1")
    f.write_text('1,2\n"3\n",4\n5,6,7\n')  # a quoted field spanning two lines
    _one_line_error(f, r"line 4 has 3 fields, expected 2 like line 1")
    f.write_text('1,2\n3,4\n5,"x\ny"\n')
    _one_line_error(f, r"non-numeric value 'x\\ny' in '.*r\.csv' line 3, column 2")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: _write(d / "e.npy", b""), r"'.*e\.npy' is empty"),
        (lambda d: _write(d / "e.csv", b""), r"is empty \(0 bytes\)"),
        (
            lambda d: _write(d / "g.npy", np.random.default_rng(0).bytes(300)),
            r"cannot read '.*g\.npy' as \.npy \(it does not start with the \.npy header",
        ),
        (
            lambda d: _write(d / "h.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}   \n"),
            r"cannot read '.*h\.npy' as \.npy \(",
        ),
        (
            lambda d: _npy(d / "t.npy", np.zeros((30, 2)), cut=200),
            r"as \.npy \(it is truncated: its header announces \(30, 2\) float64, 608 bytes",
        ),
        (
            lambda d: _npy(d / "o.npy", np.array([{}, 1], dtype=object)),
            r"'.*o\.npy' as \.npy \(it holds Python objects \(dtype object\), not numbers",
        ),
        (
            lambda d: _write(d / "g.npz", b"\x00" + np.random.default_rng(0).bytes(300)),
            r"cannot read '.*g\.npz' as \.npz \(it is not a zip archive\); write it with np\.savez",
        ),
        (
            lambda d: _npy(d / "n.npz", np.zeros((3, 2))),
            r"'.*n\.npz' is a \.npy file, not an \.npz archive; rename it to \.npy",
        ),
        (
            lambda d: np.savez(d / "o.npz", a=np.array([{}, 1], dtype=object)) or d / "o.npz",
            r"cannot read array 'a' of '.*o\.npz' \(it holds Python objects",
        ),
        (lambda d: np.savez(d / "z.npz") or d / "z.npz", r"'.*z\.npz' holds no arrays$"),
        (lambda d: np.savez(d / "s.npz", a=np.array(["x", "y"])) or d / "s.npz", "numeric"),
        (
            lambda d: torch.save(torch.zeros(3, 2, 2, 2, 2), d / "5d.pt") or d / "5d.pt",
            r"'.*5d\.pt': expected \(n,\), .* got shape \(3, 2, 2, 2, 2\)",
        ),
        (lambda d: torch.save([1, 2], d / "l.pt") or d / "l.pt", "holds a list, not a tensor"),
        (
            lambda d: _write(d / "u.csv", b"1,2\n\xff\xfe,3\n"),
            r"'.*u\.csv' is not UTF-8 text \(byte 0xff cannot be decoded\)",
        ),
        (
            lambda d: _write(d / "s.csv", b"1;2\n3;4\n"),
            r"value '1;2' \(fields must be separated by commas\) in .* line 1, column 1",
        ),
        (lambda d: _write(d / "c.csv", b"1,2,\n3,4,\n"), r"empty field in .* line 1, column 3"),
        (
            lambda d: _write(d / "q.csv", b'1,2\n"3,4\n'),
            r"non-numeric value '3,4\\n' in '.*q\.csv' line 2, column 1",
        ),
        (lambda d: (d / "dir.npz").mkdir() or d / "dir.npz", "folder .* has no images"),
        (
            lambda d: _shards(d / "m", '{"shards": ["a.npy"], "rows": "x"}'),
            r"cannot read '.*manifest\.json' \('rows' must list one row count for each file",
        ),
        (
            lambda d: _shards(d / "m", "[1]"),
            r"manifest\.json' \(it must be a JSON object",
        ),
    ],
)
def test_damaged_files_are_one_line_input_errors(tmp_path, make, match):
    msg = _one_line_error(make(tmp_path), match)
    assert msg.startswith("P: ") and "allow_pickle" not in msg


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _npy(path, arr, cut=None):
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=True)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    return path


def _shards(folder, manifest: str):
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((3, 2)))
    (folder / "manifest.json").write_text(manifest)
    return folder


def test_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf1,2\n3,4\n")
    assert load_samples(tmp_path / "bom.csv").data.tolist() == [[1.0, 2.0], [3.0, 4.0]]
