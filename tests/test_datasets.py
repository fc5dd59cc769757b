"""Tests of boostnet.app.datasets: named sets, synthetic sets, data files and their error messages."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from boostnet.app.datasets import (
    FASHION_MNIST_DIR,
    NAMED,
    Dataset,
    dataset_table,
    infer_task,
    load_data,
    read_idx,
)
from boostnet.exceptions import DataError

SKLEARN_SHAPES = {
    "digits": (1797, 64, "classification", 10),
    "iris": (150, 4, "classification", 3),
    "wine": (178, 13, "classification", 3),
    "breast-cancer": (569, 30, "classification", 2),
    "diabetes": (442, 10, "regression", None),
}
SYNTHETIC_SHAPES = {
    "moons": (500, 2, "classification", 2),
    "circles": (500, 2, "classification", 2),
    "xor": (500, 2, "classification", 2),
    "double-moon": (500, 2, "classification", 2),
    "friedman1": (500, 10, "regression", None),
}


def _has_fashion_mnist() -> bool:
    d = Path(FASHION_MNIST_DIR)
    return d.is_dir() and any(d.glob("train-images*"))


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format (magic 0x0000, dtype 0x08, ndim, big-endian dims)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(arr)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def make_idx_dir(directory: Path, n_train=30, n_test=10, with_test=True, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    parts = {
        "train": (rng.integers(0, 256, (n_train, 4, 3)), np.arange(n_train) % 3),
    }
    if with_test:
        parts["t10k"] = (rng.integers(0, 256, (n_test, 4, 3)), np.arange(n_test) % 3)
    for prefix, (images, labels) in parts.items():
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return parts


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def error_of(*args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_data(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------------- named sets


@pytest.mark.parametrize("name", list(SKLEARN_SHAPES) + list(SYNTHETIC_SHAPES))
def test_named_sets_load_with_right_shapes(name):
    n, d, task, n_classes = {**SKLEARN_SHAPES, **SYNTHETIC_SHAPES}[name]
    ds = load_data(name)
    assert isinstance(ds, Dataset)
    assert ds.name == name
    assert ds.X.shape == (n, d) and ds.X.dtype == np.float64
    assert np.all(np.isfinite(ds.X))
    assert ds.y.shape == (n,)
    assert ds.task == task
    assert ds.n_classes == n_classes
    assert ds.X_test is None and ds.y_test is None
    if task == "regression":
        assert ds.y.dtype == np.float64
    if name in SKLEARN_SHAPES:
        assert ds.source == "scikit-learn (bundled)"
        assert ds.feature_names is not None and len(ds.feature_names) == d
    else:
        assert ds.source.startswith("synthetic (seed 0")


def test_named_order_and_alias():
    assert NAMED == (
        "digits",
        "iris",
        "wine",
        "breast-cancer",
        "diabetes",
        "moons",
        "circles",
        "xor",
        "double-moon",
        "friedman1",
        "fashion-mnist",
    )
    assert load_data("iris") != load_data("wine")
    assert load_data("Breast_Cancer").name == "breast-cancer"


@pytest.fixture(scope="module")
def fashion():
    if not _has_fashion_mnist():
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_MNIST_DIR} (dataset-fashion-mnist)")
    return load_data("fashion-mnist")


def test_fashion_mnist(fashion):
    ds = fashion
    assert ds.X.shape == (60000, 784) and ds.X.dtype == np.float64
    assert ds.X_test.shape == (10000, 784)
    assert ds.y.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.X.min() >= 0 and ds.X.max() <= 255
    assert ds.task == "classification" and ds.n_classes == 10
    assert set(np.unique(ds.y)) == set(range(10))


def test_fashion_mnist_missing_files(tmp_path):
    msg = error_of("fashion-mnist", data_dir=str(tmp_path))
    assert str(tmp_path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg


def test_fashion_mnist_from_data_dir(tmp_path):
    parts = make_idx_dir(tmp_path, n_train=12, n_test=6)
    ds = load_data("fashion-mnist", data_dir=str(tmp_path))
    assert ds.name == "fashion-mnist"
    np.testing.assert_array_equal(ds.X, parts["train"][0].reshape(12, -1))
    np.testing.assert_array_equal(ds.y_test, parts["t10k"][1])


# ----------------------------------------------------------------------------- synthetic sets


@pytest.mark.parametrize("name", list(SYNTHETIC_SHAPES))
def test_synthetic_reproducible_and_seeded(name):
    a, b = load_data(name, seed=3), load_data(name, seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    c = load_data(name, seed=4)
    assert not np.array_equal(a.X, c.X)
    assert a.source == "synthetic (seed 3, noise {:g})".format(
        {"moons": 0.2, "circles": 0.1, "xor": 0.0, "double-moon": 0.0, "friedman1": 1.0}[name]
    )


@pytest.mark.parametrize("name", list(SYNTHETIC_SHAPES))
def test_synthetic_n_samples_and_noise(name):
    ds = load_data(name, n_samples=64)
    assert ds.X.shape[0] == 64 and ds.y.shape == (64,)
    quiet, noisy = load_data(name, noise=0.0), load_data(name, noise=0.5)
    assert not np.array_equal(
        quiet.X if name != "friedman1" else quiet.y, noisy.X if name != "friedman1" else noisy.y
    )
    assert "noise 0.5" in noisy.source


def test_moons_noise_matches_sklearn():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=50, noise=0.3, random_state=7)
    ds = load_data("moons", n_samples=50, noise=0.3, seed=7)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_xor_labels_are_parity(d):
    ds = load_data("xor", n_features=d, n_samples=200, seed=1)
    assert ds.X.shape == (200, d)
    assert np.all(np.abs(ds.X) <= 1)
    np.testing.assert_array_equal(ds.y, (ds.X > 0).sum(axis=1) % 2)


def test_xor_noise_keeps_clean_labels():
    clean = load_data("xor", n_samples=100, seed=2)
    noisy = load_data("xor", n_samples=100, seed=2, noise=0.1)
    np.testing.assert_array_equal(clean.y, noisy.y)
    assert np.abs(noisy.X).max() > 1 or not np.array_equal(clean.X, noisy.X)


def test_double_moon_balanced_two_dimensional():
    ds = load_data("double-moon", n_samples=400, seed=5)
    assert ds.X.shape == (400, 2)
    assert np.bincount(ds.y).tolist() == [200, 200]
    upper, lower = ds.X[ds.y == 0], ds.X[ds.y == 1]
    # Upper half ring around the origin, radius 7..13, above y=0.
    r0 = np.hypot(upper[:, 0], upper[:, 1])
    assert r0.min() >= 7 - 1e-9 and r0.max() <= 13 + 1e-9 and upper[:, 1].min() >= 0
    # Lower half ring around (10, -1), below y=-1 (separation 1).
    r1 = np.hypot(lower[:, 0] - 10, lower[:, 1] + 1)
    assert r1.min() >= 7 - 1e-9 and r1.max() <= 13 + 1e-9 and lower[:, 1].max() <= -1
    odd = load_data("double-moon", n_samples=7)
    assert np.bincount(odd.y).tolist() == [4, 3]


def test_friedman1_n_features():
    ds = load_data("friedman1", n_features=6, n_samples=50)
    assert ds.X.shape == (50, 6) and ds.task == "regression"
    assert "at least 5" in error_of("friedman1", n_features=3)


def test_synthetic_option_errors():
    assert error_of("moons", n_samples=0) == "n_samples must be at least 1, got 0"
    assert "n_samples must be an integer" in error_of("moons", n_samples=2.5)
    assert "noise must be a finite number >= 0" in error_of("moons", noise=-1)
    assert "y has only 1 class" in error_of("moons", n_samples=1)
    assert "n_features applies only to" in error_of("moons", n_features=3)


def test_options_that_do_not_apply():
    assert "noise applies only to synthetic" in error_of("iris", noise=0.1)
    assert "target applies only to CSV" in error_of("digits", target="0")
    assert "data_dir applies only to fashion-mnist" in error_of("moons", data_dir="/tmp")


# ----------------------------------------------------------------------------- text files


def test_csv_header_string_target(tmp_path):
    src = write(
        tmp_path,
        "flowers.csv",
        "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
        "4.9,1.4,setosa\n",
    )
    ds = load_data(src)
    assert ds.name == "flowers.csv" and ds.source == src
    assert ds.feature_names == ["sepal", "petal"]
    np.testing.assert_array_equal(ds.X, [[5.1, 1.4], [7.0, 4.7], [6.3, 6.0], [4.9, 1.4]])
    assert ds.y.tolist() == ["setosa", "versicolor", "virginica", "setosa"]
    assert ds.task == "classification" and ds.n_classes == 3


def test_csv_without_header(tmp_path):
    src = write(tmp_path, "plain.csv", "1,2,0\n3,4,1\n5,6,0\n")
    ds = load_data(src)
    assert ds.feature_names is None
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    assert ds.y.dtype.kind == "i" and ds.y.tolist() == [0, 1, 0]
    assert ds.task == "classification"


def test_csv_without_header_string_labels(tmp_path):
    # A first row whose only non-numeric field is a label is data, not a header.
    src = write(tmp_path, "labels.csv", "5.1,3.5,setosa\n7.0,3.2,versicolor\n")
    ds = load_data(src)
    assert ds.X.shape == (2, 2) and ds.feature_names is None
    assert ds.y.tolist() == ["setosa", "versicolor"]


def test_tsv_and_txt(tmp_path):
    src = write(tmp_path, "data.tsv", "a\tb\ty\n1\t2\t0.5\n3\t4\t1.5\n5\t6\t2.25\n")
    ds = load_data(src)
    assert ds.feature_names == ["a", "b"]
    np.testing.assert_array_equal(ds.y, [0.5, 1.5, 2.25])
    assert ds.task == "regression" and ds.y.dtype == np.float64
    arr = np.column_stack([np.arange(10.0), np.arange(10.0) ** 2, np.arange(10) % 2])
    txt = tmp_path / "data.txt"
    np.savetxt(txt, arr)
    ds = load_data(str(txt))
    np.testing.assert_allclose(ds.X, arr[:, :2])
    assert ds.y.tolist() == (np.arange(10) % 2).tolist()
    semi = write(tmp_path, "semi.txt", "x;y;label\n1;2;a\n3;4;b\n")
    assert load_data(semi).feature_names == ["x", "y"]


def test_csv_gz(tmp_path):
    p = tmp_path / "data.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("a,b,y\n1,2,0\n3,4,1\n")
    ds = load_data(str(p))
    assert ds.X.shape == (2, 2) and ds.name == "data.csv.gz"


def test_target_by_name_and_index(tmp_path):
    src = write(tmp_path, "prices.csv", "price,rooms,area\n100,2,50\n200,3,80\n150,2,65\n")
    by_name = load_data(src, target="price", task="regression")
    by_index = load_data(src, target="0", task="regression")
    np.testing.assert_array_equal(by_name.y, [100, 200, 150])
    np.testing.assert_array_equal(by_name.X, by_index.X)
    assert by_name.feature_names == ["rooms", "area"]
    np.testing.assert_array_equal(by_name.X, [[2, 50], [3, 80], [2, 65]])
    assert load_data(src, target="-1", task="regression").feature_names == ["price", "rooms"]
    headerless = write(tmp_path, "nohead.csv", "0,1,2\n1,5,7\n")
    np.testing.assert_array_equal(load_data(headerless, target="0").y, [0, 1])


def test_unknown_target_column(tmp_path):
    src = write(tmp_path, "data.csv", "a,b,c\n1,2,0\n3,4,1\n")
    assert error_of(src, target="price") == (f"column 'price' not found in {src}; columns: a, b, c")
    assert "out of range" in error_of(src, target="5")
    headerless = write(tmp_path, "nohead.csv", "1,2,0\n3,4,1\n")
    assert "no header row" in error_of(headerless, target="price")


def test_non_numeric_feature(tmp_path):
    src = write(tmp_path, "data.csv", "size,color,y\n1,red,0\n2,blue,1\n")
    msg = error_of(src)
    assert msg.startswith(f"non-numeric values in feature column 'color' of {src}")


def test_nan_and_missing_values(tmp_path):
    nan = write(tmp_path, "nan.csv", "a,b,y\n1,nan,0\n2,3,1\n")
    assert error_of(nan).startswith(f"NaN or infinite values in features of {nan}")
    inf = write(tmp_path, "inf.csv", "a,b,y\n1,inf,0\n2,3,1\n")
    assert error_of(inf).startswith("NaN or infinite values in features of")
    empty = write(tmp_path, "empty.csv", "a,b,y\n1,,0\n2,3,1\n")
    assert error_of(empty).startswith("missing value (empty field) in feature column 'b'")
    missing_y = write(tmp_path, "missing_y.csv", "a,b,y\n1,2,\n2,3,1\n")
    assert "target column 'y'" in error_of(missing_y)
    nan_y = write(tmp_path, "nan_y.csv", "a,y\n1,0.5\n2,nan\n3,1.5\n")
    assert "NaN or infinite values in y" in error_of(nan_y, task="regression")


def test_single_class(tmp_path):
    src = write(tmp_path, "one.csv", "a,b,y\n1,2,cat\n3,4,cat\n")
    assert error_of(src).startswith("y has only 1 class ('cat')")


def test_bad_text_files(tmp_path):
    assert "empty" in error_of(write(tmp_path, "empty.csv", ""))
    assert "only a header" in error_of(write(tmp_path, "head.csv", "a,b,c\n"))
    assert "has 2 fields, expected 3" in error_of(write(tmp_path, "ragged.csv", "1,2,3\n4,5\n"))
    assert "only 1 column" in error_of(write(tmp_path, "one.csv", "1\n2\n"))
    p = tmp_path / "latin.csv"
    p.write_bytes(b"a,b,y\n1,2,caf\xe9\n")
    assert "not UTF-8" in error_of(str(p))


# ----------------------------------------------------------------------------- npz, svmlight


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    p = tmp_path / "data.npz"
    np.savez(p, X=X, y=y)
    ds = load_data(str(p))
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.task == "classification" and ds.name == "data.npz"
    Y = rng.normal(size=(20, 2))
    np.savez(p, X=X, y=Y)
    ds = load_data(str(p))
    assert ds.task == "regression" and ds.y.shape == (20, 2)


def test_npz_official_split(tmp_path):
    p = tmp_path / "split.npz"
    np.savez(p, X=np.eye(4), y=[0, 1, 0, 1], X_test=np.ones((2, 4)), y_test=[1, 2])
    ds = load_data(str(p))
    assert ds.X_test.shape == (2, 4) and ds.n_classes == 3


def test_bad_npz(tmp_path):
    p = tmp_path / "nokey.npz"
    np.savez(p, X=np.eye(3), labels=[0, 1, 0])
    msg = error_of(str(p))
    assert "has no array 'y'" in msg and "labels" in msg
    p = tmp_path / "pickled.npz"
    np.savez(p, X=np.eye(2), y=np.array([{"a": 1}, None], dtype=object))
    assert "object arrays" in error_of(str(p)) and "allow_pickle=False" in error_of(str(p))
    p = tmp_path / "mismatch.npz"
    np.savez(p, X=np.eye(3), y=[0, 1])
    assert "do not match" in error_of(str(p))
    p = tmp_path / "flat.npz"
    np.savez(p, X=np.arange(3.0), y=[0, 1, 0])
    assert "must be 2-D" in error_of(str(p))
    p = tmp_path / "broken.npz"
    p.write_bytes(b"not a zip file")
    assert error_of(str(p)) == f"cannot read {p}: not an .npz archive (as written by numpy.savez)"


def test_svmlight_round_trip(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 5))
    X[X < 0] = 0.0
    X[:, 0] = 1.0  # feature 0 present, so the zero-based indices are detected
    y = np.arange(30) % 3
    for suffix in (".svm", ".svmlight", ".libsvm"):
        p = tmp_path / f"data{suffix}"
        dump_svmlight_file(X, y, str(p))
        ds = load_data(str(p))
        np.testing.assert_allclose(ds.X, X)
        np.testing.assert_array_equal(ds.y, y)
        assert ds.task == "classification" and ds.y.dtype.kind == "i"
    wide = load_data(str(tmp_path / "data.svm"), n_features=8)
    assert wide.X.shape == (30, 8)
    bad = write(tmp_path, "bad.svm", "1 qid:x 3:abc\n")
    assert error_of(bad).startswith(f"cannot read {bad}")


# ----------------------------------------------------------------------------- IDX


def test_idx_directory_with_test_split(tmp_path):
    parts = make_idx_dir(tmp_path / "mnistlike")
    ds = load_data(str(tmp_path / "mnistlike"))
    assert ds.name == "mnistlike" and ds.task == "classification"
    np.testing.assert_array_equal(ds.X, parts["train"][0].reshape(30, 12))
    np.testing.assert_array_equal(ds.y, parts["train"][1])
    np.testing.assert_array_equal(ds.X_test, parts["t10k"][0].reshape(10, 12))
    np.testing.assert_array_equal(ds.y_test, parts["t10k"][1])
    assert ds.X.dtype == np.float64 and ds.n_classes == 3


def test_idx_directory_uncompressed_train_only(tmp_path):
    make_idx_dir(tmp_path, with_test=False, compress=False)
    ds = load_data(str(tmp_path))
    assert ds.X.shape == (30, 12) and ds.X_test is None


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = write_idx(tmp_path / "a-idx3-ubyte", arr)
    out = read_idx(p)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)


def test_truncated_idx(tmp_path):
    make_idx_dir(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(p.read_bytes())
    with gzip.open(p, "wb") as fh:
        fh.write(data[:-5])
    msg = error_of(str(tmp_path))
    assert "truncated IDX file" in msg and "train-images-idx3-ubyte.gz" in msg
    p.write_bytes(p.read_bytes()[:20])  # truncated gzip stream
    assert "truncated or corrupted" in error_of(str(tmp_path))
    p.write_bytes(b"\x01\x02\x03\x04rubbish")
    assert "not an IDX file" in error_of(str(tmp_path))


def test_idx_mismatched_counts(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    assert "has 7 labels but its images file has 30 images" in error_of(str(tmp_path))


def test_idx_half_test_pair(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert "has t10k-images but no t10k-labels" in error_of(str(tmp_path))


def test_directory_without_idx(tmp_path):
    assert "without MNIST-format IDX files" in error_of(str(tmp_path))


# ----------------------------------------------------------------------------- names, paths


def test_unknown_name():
    msg = error_of("nope")
    assert msg.startswith("unknown data set 'nope'; known: digits, iris, wine, breast-cancer")
    assert "did you mean 'digits'" in error_of("digit")


def test_missing_file(tmp_path):
    assert error_of("foo.csv") == "file not found: foo.csv"
    missing = str(tmp_path / "nothere")
    assert error_of(missing) == f"file not found: {missing}"


def test_unsupported_file_type(tmp_path):
    src = write(tmp_path, "data.xlsx", "x")
    assert error_of(src).startswith("unsupported file type '.xlsx'")


# ----------------------------------------------------------------------------- tasks


@pytest.mark.parametrize(
    ("y", "task"),
    [
        ([0, 1, 2, 1], "classification"),
        (["a", "b", "a"], "classification"),
        ([True, False], "classification"),
        ([0.0, 1.0, 1.0, 0.0], "classification"),
        ([0.5, 1.0, 2.0], "regression"),
        (np.arange(21.0), "regression"),
        (np.arange(1000.0) % 40, "classification"),  # 40 values <= 5% of 1000
        (np.arange(1000.0) % 60, "regression"),
        (np.zeros((5, 2)), "regression"),
        (np.zeros((5, 1), dtype=int), "classification"),
        ([1.0, np.nan], "regression"),
    ],
)
def test_infer_task(y, task):
    assert infer_task(y) == task


def test_task_forcing(tmp_path):
    ds = load_data("digits", task="regression")
    assert ds.task == "regression" and ds.y.dtype == np.float64 and ds.n_classes is None
    src = write(tmp_path, "counts.csv", "a,y\n1,0.5\n2,1.5\n3,0.5\n")
    assert load_data(src).task == "regression"
    forced = load_data(src, task="classification")
    assert forced.task == "classification" and forced.n_classes == 2
    labels = write(tmp_path, "labels.csv", "a,y\n1,cat\n2,dog\n")
    msg = error_of(labels, task="regression")
    assert msg.startswith("regression needs numeric targets") and "'cat'" in msg
    assert error_of("iris", task="clustering") == (
        "unknown task 'clustering'; expected 'classification' or 'regression'"
    )


# ----------------------------------------------------------------------------- table


def test_dataset_table():
    rows = dataset_table()
    assert [r["name"] for r in rows] == list(NAMED)
    for r in rows:
        assert set(r) == {"name", "task", "samples", "features", "classes", "source"}
        if r["task"] == "regression":
            assert r["classes"] is None
    fm = rows[NAMED.index("fashion-mnist")]
    assert (fm["samples"], fm["features"], fm["classes"]) == (70000, 784, 10)
    for r in rows:
        if r["name"] == "fashion-mnist":
            continue
        ds = load_data(r["name"])
        assert (r["samples"], r["features"], r["task"], r["classes"]) == (
            ds.X.shape[0],
            ds.X.shape[1],
            ds.task,
            ds.n_classes,
        )
