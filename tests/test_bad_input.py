"""The bad-input catalogue (issue 13): what a careless or hostile user can hand boostnet.

Every case of :data:`CASES` is its own test: the command line gets the input and must answer with
the documented exit code (2 for usage errors: option values, configuration keys and values,
``--out``; 1 for data and model-file errors; see docs/cli.md, "Errors") and exactly one line on
stderr, with no traceback; and it must leave nothing behind (no temporary file or folder, no empty
run directory) and change nothing already written (the shared model and every file the case made
beforehand are compared byte for byte). Almost every case fails before any training; the cases that
need a trained model share one tiny iris model made once per module.

Below the catalogue: the Python API's typed exceptions, the behaviours that need more than one
command (signals, two runs at once, ``compare --resume``), and property-based inputs (hypothesis)
for CSV, TOML and npz files.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from boostnet.app.cli import app
from boostnet.exceptions import ConfigError, DataError, ModelFileError

runner = CliRunner()
FAST = ["--n-candidates", "128", "--max-units", "3", "--no-progress"]
ROOT = Path(__file__).resolve().parents[1]


# ---- the shared tiny models ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One iris run directory (made by ``run_train``, as ``boostnet train`` makes it), one model
    saved by the API without a run record, and one tiny regressor."""
    from boostnet import BoostNetClassifier, BoostNetRegressor
    from boostnet.app.experiment import RunConfig, run_train

    root = tmp_path_factory.mktemp("models")
    cfg = RunConfig(data="iris", params={"max_units": 3, "n_candidates": 128})
    run_train(cfg, out=root / "run")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    BoostNetClassifier(max_units=2, n_candidates=64, random_state=0).fit(X, X[:, 0] > 0).save(
        root / "api.npz"
    )
    BoostNetRegressor(alpha="ratio", max_units=2, n_candidates=64, random_state=0).fit(
        X, X[:, 0] + X[:, 1]
    ).save(root / "reg.npz")
    return root


class Workspace:
    """Where a case builds its inputs (the test's own folder, also the working directory)."""

    def __init__(self, tmp: Path, models: Path):
        self.tmp, self.models = tmp, models
        self.run = models / "run"
        self.model = models / "run" / "model.npz"

    def file(self, name, content) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    def npz(self, name, **arrays) -> Path:
        p = self.tmp / name
        np.savez(p, **arrays)
        return p

    def tampered(self, name, meta=None, arrays=None, keep_sha=False, src=None) -> Path:
        """A copy of the shared model with its metadata and/or arrays edited."""
        with np.load(src or self.model, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        m = json.loads(str(data["__meta__"]))
        if not keep_sha:
            m.pop("sha256", None)
        if meta is not None:
            m = meta(m)
        if arrays is not None:
            arrays(data)
        data["__meta__"] = np.array(m if isinstance(m, str) else json.dumps(m))
        p = self.tmp / name
        np.savez(p, **data)
        return p


def _tree(*roots) -> dict:
    """Every file and folder under the roots, with the sha256 of each file."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = "dir"
            for f in filenames:
                p = os.path.join(dirpath, f)
                out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


# ---- the catalogue -------------------------------------------------------------------------------
#: id -> (build(ws) -> argv, exit code, text the one line must hold)
CASES: dict = {}


def case(cid, code, needle):
    def deco(build):
        assert cid not in CASES, cid
        CASES[cid] = (build, code, needle)
        return build

    return deco


def simple(cid, code, needle, *argv):
    case(cid, code, needle)(lambda ws: list(argv))


def train_csv(cid, code, needle, content, *extra, name="d.csv"):
    case(cid, code, needle)(
        lambda ws: ["train", "--data", ws.file(name, content), "--out", "r", *FAST, *extra]
    )


IRIS = ["--data", "iris", "--out", "r", *FAST]
GOOD = "a,b,y\n" + "".join(f"{i},{(i * 7) % 5},{i % 2}\n" for i in range(40))

# CSV / text files
simple("csv-missing-file", 1, "file not found", "train", "--data", "nope.csv", "--out", "r")
train_csv("csv-empty", 1, "empty", "")
train_csv("csv-blank-lines-only", 1, "empty", "\n\n  \n")
train_csv("csv-header-only", 1, "only a header", "a,b,y\n")
train_csv("csv-ragged-row", 1, "fields, expected 3", "a,b,y\n1,2,0\n1,2\n3,4,1\n")
train_csv("csv-too-many-fields", 1, "fields, expected 3", "a,b,y\n1,2,0\n1,2,3,4\n")
train_csv("csv-one-column", 1, "only 1 column", "y\n0\n1\n0\n1\n")
train_csv("csv-non-numeric-feature", 1, "non-numeric", "a,b,y\n1,x,0\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-empty-feature", 1, "missing value", "a,b,y\n1,,0\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-nan-feature", 1, "NaN", "a,b,y\n1,nan,0\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-inf-feature", 1, "NaN or infinite", "a,b,y\n1,inf,0\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-minus-inf-feature", 1, "NaN or infinite", "a,b,y\n1,-inf,0\n3,4,1\n5,6,0\n")
train_csv("csv-overflowing-literal", 1, "NaN or infinite", "a,b,y\n1,1e999,0\n3,4,1\n5,6,0\n")
train_csv("csv-empty-target", 1, "missing value", "a,b,y\n1,2,\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-nan-target", 1, "NaN", "a,b,y\n1,2,nan\n3,4,1\n5,6,0\n7,8,1\n")
train_csv("csv-constant-features", 1, "every feature is constant", "a,b,y\n" + "1,2,0\n1,2,1\n" * 6)
train_csv(
    "csv-constant-target",
    1,
    "target is constant",
    "a,b,y\n" + "".join(f"{i},{i % 3},5\n" for i in range(12)),
    "--task",
    "regression",
)
train_csv("csv-single-class", 1, "1 class", "a,b,y\n1,2,k\n3,4,k\n5,6,k\n7,8,k\n")
train_csv("csv-unknown-target-name", 1, "not found", GOOD, "--target", "label")
train_csv("csv-target-index-out-of-range", 1, "out of range", GOOD, "--target", "7")
train_csv("csv-target-negative-out-of-range", 1, "out of range", GOOD, "--target", "-4")
train_csv(
    "csv-target-name-without-header", 1, "no header", "1,2,0\n3,4,1\n5,6,0\n", "--target", "y"
)
train_csv(
    "csv-duplicate-target-name", 1, "appears 2 times", "a,a,y\n1,2,0\n3,4,1\n", "--target", "a"
)
train_csv(
    "csv-numbered-header-1", 1, "header of column numbers", "1,2,3\n" + GOOD.split("\n", 1)[1]
)
train_csv(
    "csv-numbered-header-0", 1, "header of column numbers", "0,1,2\n" + GOOD.split("\n", 1)[1]
)
train_csv("csv-not-utf8", 1, "not UTF-8", b"a,b,y\n1,2,\xff\n3,4,1\n")
train_csv("csv-binary-junk", 1, "not UTF-8", bytes(range(256)) * 4)
train_csv("csv-gz-corrupted", 1, "gzip", b"\x1f\x8b\x08junkjunk", name="d.csv.gz")
train_csv("csv-gz-not-gzip", 1, "cannot read", b"a,b,y\n1,2,0\n", name="d.csv.gz")
train_csv(
    "csv-values-beyond-standardising",
    1,
    "feature 'a' holds values up to 1.7e+308, too large to standardise",
    "a,b,y\n1.7e308,0,1\n" + "".join(f"-1.7e308,{i},{i % 2}\n" for i in range(30)),
)
train_csv(
    "csv-huge-values-unstandardised",
    1,
    "standardise the features",
    GOOD + "1e300,1,0\n",
    "--no-standardize",
)
train_csv(
    # within the screen's range, but relu units' squared activations overflow the float32 re-fit:
    # the fit used to end "stalled" with no unit, at chance
    "csv-rows-beyond-relu-squares-unstandardised",
    1,
    "standardise the features",
    GOOD + "1e20,1,0\n",
    "--no-standardize",
)
train_csv(
    "csv-regression-on-labels",
    1,
    "numeric targets",
    "a,y\n1,cat\n2,dog\n3,cat\n",
    "--task",
    "regression",
)
train_csv(
    "csv-classification-on-1000-floats",
    1,
    "samples per class",
    "a,y\n" + "".join(f"{i},{i * 0.37:.4f}\n" for i in range(1000)),
    "--task",
    "classification",
)
train_csv("csv-n-samples-does-not-apply", 1, "applies only", GOOD, "--n-samples", "10")
train_csv("csv-noise-does-not-apply", 1, "applies only", GOOD, "--noise", "0.1")
train_csv("csv-n-features-does-not-apply", 1, "applies only", GOOD, "--n-features", "3")
train_csv("csv-data-dir-does-not-apply", 1, "applies only", GOOD, "--data-dir", ".")
train_csv("csv-too-few-rows-to-split", 1, "only 1 class", "a,y\n1,0\n2,1\n")
train_csv("tsv-with-commas", 1, "only 1 column", "a,b,y\n1,2,0\n3,4,1\n", name="d.tsv")
train_csv("csv-train-size-beyond-data", 2, "train_size 1000", GOOD, "--train-size", "1000")
train_csv("csv-unsupported-suffix", 1, "unsupported file type", GOOD, name="d.xlsx")
case("csv-path-is-a-directory", 1, "directory without")(
    lambda ws: ["train", "--data", ws.file("dir.csv/x", "1").parent, "--out", "r"]
)
case("csv-path-through-a-file", 1, "file not found")(
    lambda ws: ["train", "--data", ws.file("plain", "x") / "d.csv", "--out", "r"]
)


# npz data files
def train_npz(cid, code, needle, **arrays):
    case(cid, code, needle)(
        lambda ws: ["train", "--data", ws.npz("d.npz", **arrays), "--out", "r", *FAST]
    )


X8 = np.arange(16.0).reshape(8, 2)
Y8 = np.arange(8) % 2
train_npz("npz-missing-y", 1, "no array 'y'", X=X8, labels=Y8)
train_npz("npz-missing-x", 1, "no array 'X'", y=Y8)
train_npz("npz-object-y", 1, "object arrays", X=X8, y=np.array([{}] * 8, dtype=object))
train_npz("npz-x-1d", 1, "2-D", X=np.arange(8.0), y=Y8)
train_npz("npz-x-3d", 1, "2-D", X=np.zeros((8, 2, 2)), y=Y8)
train_npz("npz-x-strings", 1, "non-numeric", X=np.array([["a", "b"]] * 8), y=Y8)
train_npz("npz-x-complex", 1, "non-numeric", X=X8 + 1j, y=Y8)
train_npz("npz-x-nan", 1, "NaN", X=np.where(X8 > 10, np.nan, X8), y=Y8)
train_npz("npz-y-length", 1, "do not match", X=X8, y=Y8[:5])
train_npz("npz-y-3d", 1, "do not match", X=X8, y=np.zeros((8, 2, 2)))
train_npz("npz-no-rows", 1, "no samples", X=np.zeros((0, 2)), y=np.zeros(0))
train_npz("npz-no-columns", 1, "no feature columns", X=np.zeros((8, 0)), y=Y8)
train_npz("npz-single-class", 1, "1 class", X=X8, y=np.zeros(8, dtype=int))
train_npz("npz-test-columns", 1, "columns", X=X8, y=Y8, X_test=np.zeros((4, 3)), y_test=Y8[:4])
train_npz("npz-y-inf-regression", 1, "NaN or infinite", X=X8, y=np.r_[np.inf, np.linspace(0, 1, 7)])
case("npz-garbage", 1, "not an .npz archive")(
    lambda ws: ["train", "--data", ws.file("d.npz", b"garbage"), "--out", "r"]
)
case("npz-zip-of-text", 1, "no array")(
    lambda ws: ["train", "--data", _zip_of_text(ws.tmp / "d.npz"), "--out", "r"]
)
case("npz-truncated", 1, "cannot read")(
    lambda ws: ["train", "--data", _truncated(ws.npz("d.npz", X=X8, y=Y8)), "--out", "r"]
)
case("npz-huge-declared-shape", 1, "declares")(
    lambda ws: ["train", "--data", _huge_header(ws.npz("d.npz", X=X8, y=Y8), "X"), "--out", "r"]
)


def _zip_of_text(p: Path) -> Path:
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return p


def _truncated(p: Path) -> Path:
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    return p


def _huge_header(p: Path, member: str, shape=(10**9, 10**6)) -> Path:
    """Rewrite one member's .npy header to declare an enormous shape (its data unchanged)."""
    with zipfile.ZipFile(p) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    raw = members[f"{member}.npy"]
    fh = io.BytesIO(raw)
    np.lib.format.read_magic(fh)
    _, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    data = raw[fh.tell() :]
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out,
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": shape},
    )
    members[f"{member}.npy"] = out.getvalue() + data
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return p


# svmlight files
def train_svm(cid, code, needle, content):
    case(cid, code, needle)(
        lambda ws: ["train", "--data", ws.file("d.svm", content), "--out", "r", *FAST]
    )


train_svm("svm-index-1e12", 1, "cannot read", "0 1:1 1000000000000:1\n1 2:1\n")
train_svm("svm-index-2e9", 1, "d.svm", "0 1:1 2000000000:1\n1 2:1\n")
train_svm("svm-index-1e8-would-densify", 1, "GiB", "0 1:1 100000000:1\n1 2:1\n0 3:1\n")
train_svm("svm-garbage-line", 1, "cannot read", "0 1:1\nthis is not svmlight\n")
train_svm("svm-bad-value", 1, "cannot read", "0 1:abc\n1 2:1\n")
train_svm("svm-empty", 1, "d.svm", "")
train_svm("svm-non-numeric-label", 1, "cannot read", "cat 1:1\ndog 2:1\n")
train_svm("svm-nan-value", 1, "NaN", "0 1:nan\n1 2:1\n0 1:2\n1 2:2\n")
case("svm-n-features-too-small", 1, "d.svm")(
    lambda ws: [
        "train",
        "--data",
        ws.file("d.svm", "0 5:1\n1 2:1\n"),
        "--n-features",
        "2",
        "--out",
        "r",
    ]
)

# IDX folders
case("idx-empty-folder", 1, "without MNIST-format IDX files")(
    lambda ws: ["train", "--data", ws.file("idx/readme", "x").parent, "--out", "r"]
)
case("idx-truncated-images", 1, "truncated")(
    lambda ws: [
        "train",
        "--data",
        _idx_dir(
            ws.tmp / "idx", images=b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") * 3 + b"\x00"
        ),
        "--out",
        "r",
    ]
)
case("idx-labels-count", 1, "labels but its images file")(
    lambda ws: ["train", "--data", _idx_dir(ws.tmp / "idx", n_labels=3), "--out", "r"]
)


def _idx_dir(d: Path, images=None, n_labels=2) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = (
            b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + bytes(8)
        )
    (d / "train-images-idx3-ubyte").write_bytes(images)
    labels = b"\x00\x00\x08\x01" + n_labels.to_bytes(4, "big") + bytes(range(n_labels))
    (d / "train-labels-idx1-ubyte").write_bytes(labels)
    return d


# named and synthetic data
simple("data-unknown-name", 1, "did you mean 'iris'", "train", "--data", "irsi", "--out", "r")
simple(
    "data-empty-name", 2, "data must be a non-empty string", "train", "--data", " ", "--out", "r"
)
simple("data-option-does-not-apply", 1, "applies only", "train", *IRIS, "--noise", "0.1")
simple("data-fashion-missing-dir", 1, "fashion-mnist files not found", "train", "--data",
       "fashion-mnist", "--data-dir", "nowhere", "--out", "r")  # fmt: skip
simple("data-friedman-too-few-features", 1, "at least 5", "train", "--data", "friedman1",
       "--n-features", "2", "--out", "r")  # fmt: skip

# options of train (usage errors: exit 2)
for _cid, _argv, _needle in [
    ("opt-seed-negative", ["--seed", "-1"], "seed must be at least 0"),
    ("opt-seed-not-int", ["--seed", "abc"], "--seed"),
    ("opt-seed-too-large", ["--seed", str(2**32)], "below 2**32"),
    ("opt-activation", ["--activation", "softplus"], "softplus"),
    ("opt-penalty", ["--penalty", "l3"], "--penalty"),
    ("opt-sampler", ["--sampler", "grid"], "--sampler"),
    ("opt-device", ["--device", "tpu"], "--device"),
    ("opt-dtype", ["--dtype", "float8"], "--dtype"),
    ("opt-task", ["--task", "clustering"], "--task"),
    ("opt-alpha-word", ["--alpha", "abc"], "--alpha must be"),
    ("opt-alpha-negative", ["--alpha", "-1"], "--alpha must be"),
    ("opt-alpha-zero", ["--alpha", "0"], "--alpha must be"),
    ("opt-alpha-inf", ["--alpha", "inf"], "--alpha must be"),
    ("opt-alpha-nan", ["--alpha", "nan"], "--alpha must be"),
    ("opt-alpha-ratio-above-1", ["--alpha-ratio", "5"], "alpha_ratio"),
    ("opt-alpha-ratio-negative", ["--alpha-ratio", "-1"], "alpha_ratio"),
    ("opt-alpha-ratio-nan", ["--alpha-ratio", "nan"], "alpha_ratio"),
    ("opt-n-candidates-zero", ["--n-candidates", "0"], "n_candidates"),
    ("opt-n-candidates-float", ["--n-candidates", "2.5"], "--n-candidates"),
    ("opt-max-units-negative", ["--max-units", "-1"], "max_units"),
    ("opt-max-time-negative", ["--max-time", "-1"], "max_time"),
    ("opt-tol-negative", ["--tol", "-1"], "tol"),
    ("opt-refit-tol-zero", ["--refit-tol", "0"], "refit_tol"),
    ("opt-unit-scale-zero", ["--unit-scale", "0"], "unit_scale"),
    ("opt-units-per-step-zero", ["--units-per-step", "0"], "--units-per-step"),
    ("opt-validation-fraction", ["--validation-fraction", "2"], "validation_fraction"),
    ("opt-memory-budget-negative", ["--memory-budget-mb", "-5"], "memory_budget_mb"),
    ("opt-n-alphas-zero", ["--n-alphas", "0"], "--n-alphas"),
    ("opt-test-size-zero", ["--test-size", "0"], "test_size"),
    ("opt-test-size-one", ["--test-size", "1"], "test_size"),
    ("opt-test-size-above-one", ["--test-size", "1.5"], "test_size"),
    ("opt-test-size-nan", ["--test-size", "nan"], "test_size"),
    ("opt-train-size-one", ["--train-size", "1"], "train_size"),
    ("opt-train-size-beyond-data", ["--train-size", "100000"], "train_size 100000"),
    ("opt-n-samples-one", ["--data", "moons", "--n-samples", "1"], "--n-samples"),
    ("opt-noise-negative", ["--data", "moons", "--noise", "-1"], "--noise"),
    ("opt-unknown-option", ["--colour", "red"], "No such option"),
    ("opt-extra-argument", ["surplus"], "unexpected extra argument"),
    ("opt-missing-value", ["--seed"], "requires an argument"),
    ("opt-early-stopping-and-auto", ["--alpha", "auto", "--early-stopping"], "early_stopping"),
    ("opt-selection-unknown", ["--alpha", "auto", "--selection", "median"], "--selection"),
]:
    simple(_cid, 2, _needle, "train", *IRIS, *_argv)
simple("cmd-unknown-command", 2, "No such command", "tarin")
simple("cmd-predict-missing-model-argument", 2, "Missing argument", "predict")


# TOML configuration files
def toml(cid, code, needle, content, *extra):
    case(cid, code, needle)(
        lambda ws: ["train", "--config", ws.file("c.toml", content), "--out", "r", *FAST, *extra]
    )


toml(
    "toml-standardize-string",
    2,
    "standardize must be true or false",
    'data = "iris"\nstandardize = "no"\n',
)
toml("toml-test-size-string", 2, "test_size must be", 'data = "iris"\ntest_size = "0.3"\n')
toml("toml-params-number", 2, "params must be a table", 'data = "iris"\nparams = 5\n')
toml(
    "toml-params-unknown", 2, "unknown estimator parameter", 'data = "iris"\n[params]\ncolour = 1\n'
)
toml("toml-unknown-key", 2, "unknown configuration key 'colour'", "colour = 3\n")
toml("toml-selection-unknown", 2, "'selection' parameter", 'data = "iris"\nselection = "median"\n')
toml("toml-not-utf8", 2, "c.toml: not UTF-8", b'data = "ir\xffis"\n')
toml("toml-syntax", 2, "c.toml", "data = \n")
toml("toml-seed-negative", 2, "seed must be at least 0", 'data = "iris"\nseed = -1\n')
toml("toml-seed-float", 2, "seed must be an integer", 'data = "iris"\nseed = 1.5\n')
toml("toml-seed-bool", 2, "seed must be an integer", 'data = "iris"\nseed = true\n')
toml(
    "toml-n-samples-string", 2, "n_samples must be an integer", 'data = "moons"\nn_samples = "10"\n'
)
toml("toml-data-number", 2, "data must be a non-empty string", "data = 5\n")
toml("toml-data-table", 2, "data must be a non-empty string", "[data]\nname = 'iris'\n")
toml("toml-target-bool", 2, "target must be", 'data = "iris"\ntarget = true\n')
toml("toml-task-unknown", 2, "task must be", 'data = "iris"\ntask = "clustering"\n')
toml("toml-noise-negative", 2, "noise must be", 'data = "moons"\nnoise = -1\n')
toml("toml-noise-nan", 2, "noise must be", 'data = "moons"\nnoise = nan\n')
toml(
    "toml-train-size-float", 2, "train_size must be an integer", 'data = "iris"\ntrain_size = 1.5\n'
)
toml("toml-n-refine-string", 2, "n_refine", 'data = "iris"\nn_refine = "5"\n')
toml("toml-activation", 2, "activation", 'data = "iris"\nactivation = "softplus"\n')
toml("toml-alpha-word", 2, "alpha must be", 'data = "iris"\nalpha = "abc"\n')
toml("toml-refine-string", 2, "refine", 'data = "iris"\nrefine = "yes"\n')
toml(
    "toml-standardize-int",
    2,
    "standardize must be true or false",
    'data = "iris"\nstandardize = 0\n',
)
toml("toml-unknown-data", 1, "unknown data set", 'data = "irsi"\n')
simple(
    "toml-missing-file", 2, "config file not found", "train", "--config", "none.toml", "--out", "r"
)
case("toml-is-a-directory", 2, "is a directory")(
    lambda ws: ["train", "--config", ws.file("cfg/x", "").parent, "--out", "r"]
)


# --out of train: checked before anything is read or trained
case("out-existing-folder", 2, "already exists")(
    lambda ws: ["train", *IRIS[:2], "--out", ws.file("taken/keep.txt", "precious").parent, *FAST]
)
case("out-existing-file", 2, "already exists")(
    lambda ws: ["train", *IRIS[:2], "--out", ws.file("taken.txt", "precious"), *FAST]
)
case("out-under-a-file", 2, "cannot create the run directory")(
    lambda ws: ["train", *IRIS[:2], "--out", ws.file("plain.txt", "x") / "run", *FAST]
)
simple("out-under-proc", 2, "cannot create the run directory", "train", "--data", "iris", "--out",
       "/proc/boostnet-run", *FAST)  # fmt: skip
simple("out-name-too-long", 2, "cannot create the run directory", "train", "--data", "iris", "--out",
       "r" * 300, *FAST)  # fmt: skip
simple("out-current-folder", 2, "already exists", "train", "--data", "iris", "--out", ".", *FAST)
# the folders reserved for the run (and its new parents) go again when the run fails
simple("out-new-parents-removed-on-failure", 1, "unknown data set", "train", "--data", "irsi",
       "--out", "a/b/c")  # fmt: skip
simple("out-default-removed-on-failure", 1, "unknown data set", "train", "--data", "irsi")


# model files (predict / evaluate)
def model_case(cid, needle, code=1, command="predict", data="iris", **tamper):
    def build(ws):
        p = ws.tampered("m.npz", **tamper)
        return [command, p, "--data", data]

    case(cid, code, needle)(build)


def _set(key, value):
    def f(m):
        m[key] = value
        return m

    return f


def _extra(key, value):
    def f(m):
        m["extra"]["preprocessing"][key] = value
        return m

    return f


model_case("model-meta-not-json", "cannot read model file", meta=lambda m: "{not json")
model_case("model-meta-a-list", "bad metadata record", meta=lambda m: [1, 2])
model_case("model-format", "not a boostnet model", meta=_set("format", "other"))
model_case("model-format-version", "format version 99", meta=_set("format_version", 99))
model_case("model-unknown-estimator", "unknown estimator", meta=_set("estimator", "SVC"))
model_case("model-estimator-renamed", "holds classes", meta=_set("estimator", "BoostNetRegressor"))
model_case("model-estimator-renamed-digested", "holds classes", keep_sha=True,
           meta=_set("estimator", "BoostNetRegressor"))  # fmt: skip
model_case("model-classes-reordered", "not distinct and sorted", meta=_set("classes", [2, 1, 0]))
model_case("model-classes-reordered-digested", "not distinct and sorted", keep_sha=True,
           meta=_set("classes", [2, 1, 0]))  # fmt: skip
model_case("model-classes-duplicated", "not distinct and sorted", meta=_set("classes", [0, 0, 1]))
model_case("model-classes-too-few", "classes", meta=_set("classes", [0, 1]))
model_case("model-classes-one", "at least 2 classes", meta=_set("classes", [0]))
model_case("model-classes-mixed-types", "mix types", meta=_set("classes", [0, "a", 2]))
model_case("model-classes-dtype", "classes_dtype", meta=_set("classes_dtype", "x"))
model_case("model-mean-wrong-length", "preprocessing mean has 3 values",
           meta=_extra("mean", [0.0, 0.0, 0.0]))  # fmt: skip
model_case("model-mean-string", "preprocessing mean has str", meta=_extra("mean", "abc"))
model_case("model-mean-strings", "non-numbers", meta=_extra("mean", ["a", "b", "c", "d"]))
model_case("model-classes-relabelled-digested", "checksum mismatch", keep_sha=True,
           meta=_set("classes", [0, 1, 5]))  # fmt: skip
model_case("model-params-edited-digested", "checksum mismatch", keep_sha=True,
           meta=lambda m: {**m, "params": {**m["params"], "activation": "tanh"}})  # fmt: skip
model_case("model-sha-not-a-digest", "checksum mismatch", keep_sha=True, meta=_set("sha256", 5))
model_case("model-mean-digested", "checksum mismatch", keep_sha=True,
           meta=_extra("mean", [0.0, 0.0, 0.0, 0.0]))  # fmt: skip
model_case("model-scale-zero", "scale holds values <= 0", meta=_extra("scale", [0.0, 1, 1, 1]))


#: A well-formed certificate record (the shared model may have stopped otherwise).
_CERT = {"kind": "sampled", "pools": 3, "candidates": 6144, "best_score": 0.01, "alpha": 0.01,
         "tol": 0.01, "refit_gap": 1e-7, "duality_gap": 1e-8}  # fmt: skip


def _certificate(**fields):
    def f(m):
        c = m["attributes"].get("certificate_") or _CERT
        m["attributes"]["certificate_"] = {"kind": "bogus"} if not fields else {**c, **fields}
        return m

    return f


model_case("model-certificate-not-a-record", "not a certificate record", meta=_certificate())
model_case("model-certificate-kind", "not a certificate record", meta=_certificate(kind="proof"))
model_case("model-certificate-digested", "checksum mismatch", keep_sha=True,
           meta=_certificate(best_score=0.0))  # fmt: skip
model_case(
    "model-bad-activation",
    "activation",
    meta=lambda m: {**m, "params": {**m["params"], "activation": "softplus"}},
)
model_case("model-params-not-record", "params is not a record", meta=_set("params", 5))
model_case("model-n-features-wrong", "the model has 7 features", meta=_set("n_features_in", 7))
model_case("model-n-features-string", "n_features_in", meta=_set("n_features_in", "4"))
model_case("model-extra-not-record", "extra is not a record", meta=_set("extra", [1]))
model_case("model-attributes-not-record", "attributes", meta=_set("attributes", 3))
model_case("model-history-malformed", "malformed model metadata", meta=_set("history", [{"x": 1}]))
model_case("model-array-missing", "lacks array", arrays=lambda a: a.pop("coef"))
model_case(
    "model-array-shape", "shapes do not fit", arrays=lambda a: a.update(hidden_bias=np.zeros(99))
)
model_case("model-array-strings", "not numbers", arrays=lambda a: a.update(coef=np.array([["x"]])))
model_case("model-array-nan", "NaN", arrays=lambda a: a["coef"].__setitem__((0, 0), np.nan))
model_case("model-array-edited-digested", "checksum mismatch", keep_sha=True,
           arrays=lambda a: a["coef"].__setitem__((0, 0), 5.0))  # fmt: skip
model_case("model-evaluate-tampered", "checksum mismatch", command="evaluate", keep_sha=True,
           arrays=lambda a: a["intercept"].__setitem__(0, 1.0))  # fmt: skip
case("model-huge-declared-shape", 1, "declares")(
    lambda ws: [
        "predict",
        _huge_header(_copy(ws.model, ws.tmp / "m.npz"), "coef"),
        "--data",
        "iris",
    ]
)
case("model-truncated", 1, "cannot read model file")(
    lambda ws: ["predict", _truncated(_copy(ws.model, ws.tmp / "m.npz")), "--data", "iris"]
)
case("model-garbage", 1, "not an .npz archive")(
    lambda ws: ["predict", ws.file("m.npz", b"junk"), "--data", "iris"]
)
case("model-foreign-npz", 1, "not a boostnet model")(
    lambda ws: ["predict", ws.npz("m.npz", a=np.zeros(2)), "--data", "iris"]
)
simple("model-missing", 1, "model file not found", "predict", "nope.npz", "--data", "iris")
case("model-run-dir-without-model", 1, "no model.npz")(
    lambda ws: ["predict", ws.file("emptyrun/x", "").parent, "--data", "iris"]
)


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


# predict / evaluate: data and --out
case("predict-no-data", 2, "--data is required")(lambda ws: ["predict", ws.run])
case("predict-unlabeled-csv", 1, "--no-target")(
    lambda ws: ["predict", ws.run, "--data", ws.file("u.csv", "1,2,3,4\n5,6,7,8\n")]
)
case("predict-no-target-and-target", 2, "exclude each other")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--no-target", "--target", "0"]
)
case("predict-feature-mismatch", 1, "the model expects 4")(
    lambda ws: ["predict", ws.run, "--data", "wine"]
)
case("predict-out-is-the-model", 2, "would overwrite")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", ws.model]
)
case("predict-out-is-a-run-file", 2, "would overwrite")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", ws.run / "metrics.json"]
)
case("predict-out-is-an-npz", 2, "npz archive")(
    lambda ws: ["predict", ws.model, "--data", "iris", "--out", _copy(ws.model, ws.tmp / "o.npz")]
)
case("predict-out-is-a-folder", 2, "is a directory")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", ws.file("outdir/k", "").parent]
)
case("predict-out-under-a-file", 2, "Not a directory")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", ws.file("f.txt", "x") / "p.csv"]
)
case("predict-out-under-proc", 2, "cannot write")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", "/proc/preds.csv"]
)
case("predict-out-name-too-long", 2, "cannot write")(
    lambda ws: ["predict", ws.run, "--data", "iris", "--out", "p" * 300 + ".csv"]
)
case("predict-split-differs", 1, "differs from the run's")(
    lambda ws: ["predict", ws.run, "--split", "test", "--data", "wine"]
)
case("predict-split-without-run-record", 1, "no run record")(
    lambda ws: ["predict", ws.models / "api.npz", "--split", "test"]
)
case("predict-regressor-on-labels", 1, "the model is a regressor")(
    lambda ws: [
        "predict",
        ws.models / "reg.npz",
        "--data",
        ws.file("s.csv", "a,b,c,y\n1,2,3,cat\n4,5,6,dog\n"),
    ]
)
case("evaluate-unseen-labels", 1, "labels not seen")(
    lambda ws: ["evaluate", ws.run, "--data", ws.file("l.csv", "a,b,c,d,y\n1,2,3,4,7\n5,6,7,8,9\n")]
)
case("evaluate-regressor-on-labels", 1, "the model is a regressor")(
    lambda ws: [
        "evaluate",
        ws.models / "reg.npz",
        "--data",
        ws.file("s.csv", "a,b,c,y\n1,2,3,cat\n4,5,6,dog\n"),
    ]
)
case("evaluate-bad-split", 2, "--split")(lambda ws: ["evaluate", ws.run, "--split", "half"])


# export (reads model files the same way)
case("export-tampered-model", 1, "checksum mismatch")(
    lambda ws: [
        "export",
        ws.tampered("m.npz", keep_sha=True, arrays=lambda a: a["coef"].__setitem__((0, 0), 5.0)),
        "--out",
        "m.pkl",
    ]
)
case("export-out-is-the-model", 2, "the model file itself")(
    lambda ws: ["export", ws.run, "--out", ws.model]
)
case("export-out-is-a-folder", 2, "is a directory")(
    lambda ws: ["export", ws.run, "--out", ws.file("o/k", "").parent]
)
case("export-bad-format", 2, "--format")(
    lambda ws: ["export", ws.run, "--out", "m.pkl", "--format", "pmml"]
)
simple("export-missing-out", 2, "Missing option '--out'", "export", "nope.npz")


# compare
def cmp(cid, code, needle, *argv):
    simple(cid, code, needle, "compare", *argv)


cmp(
    "compare-misspelt-dataset",
    2,
    "did you mean 'iris'",
    "--datasets",
    "irsi",
    "--methods",
    "linear",
    "--out",
    "c",
)
cmp(
    "compare-unknown-method",
    2,
    "unknown method 'svm'",
    "--datasets",
    "iris",
    "--methods",
    "svm",
    "--out",
    "c",
)
cmp("compare-seeds-zero", 2, "--seeds", "--seeds", "0", "--out", "c")
cmp("compare-cv-one", 2, "--cv", "--cv", "1", "--out", "c")
cmp(
    "compare-test-size-zero", 2, "test_size", "--test-size", "0", "--datasets", "iris", "--out", "c"
)
cmp(
    "compare-duplicate-method-names",
    2,
    "unique",
    "--methods",
    "linear,linear",
    "--datasets",
    "iris",
    "--out",
    "c",
)
cmp("compare-no-methods", 2, "no methods", "--methods", ",", "--datasets", "iris", "--out", "c")
case("compare-out-is-a-file", 2, "is a file")(
    lambda ws: ["compare", "--datasets", "iris", "--methods", "linear", "--out", ws.file("c", "x")]
)
case("compare-rows-exist-without-resume", 2, "--resume")(
    lambda ws: [
        "compare",
        "--datasets",
        "iris",
        "--methods",
        "linear",
        "--out",
        ws.file("c/rows.csv", "dataset\n").parent,
    ]  # fmt: skip
)
cmp("compare-unreachable-scheduler", 2, "cannot reach the Dask scheduler", "--datasets", "iris",
    "--methods", "linear", "--seeds", "1", "--scheduler", "foo://127.0.0.1:9", "--out", "c")  # fmt: skip


def cmp_toml(cid, code, needle, content):
    case(cid, code, needle)(
        lambda ws: ["compare", "--config", ws.file("c.toml", content), "--out", "c"]
    )


cmp_toml("compare-toml-unknown-key", 2, "unknown configuration key", "colour = 1\n")
cmp_toml("compare-toml-not-utf8", 2, "c.toml: not UTF-8", b"datasets = ['\xff']\n")
cmp_toml("compare-toml-datasets-number", 2, "datasets must be a list", "datasets = 5\n")
cmp_toml(
    "compare-toml-seeds-string", 2, "seeds must be an integer", 'seeds = "3"\ndatasets = ["iris"]\n'
)
cmp_toml("compare-toml-options-for-other-set", 2, "not in datasets",
         'datasets = ["iris"]\nmethods = ["linear"]\n[dataset_options.wine]\nnoise = 1\n')  # fmt: skip
cmp_toml("compare-toml-bad-method-entry", 2, "unknown method",
         'datasets = ["iris"]\n[[method]]\nname = "x"\nmethod = "svm"\n')  # fmt: skip


@pytest.fixture
def ws(tmp_path, models, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path, models)


@pytest.mark.parametrize("cid", list(CASES))
def test_bad_input(cid, ws):
    build, code, needle = CASES[cid]
    argv = [str(a) for a in build(ws)]
    before = _tree(ws.tmp, ws.models)
    r = runner.invoke(app, argv)
    lines = r.output.strip().splitlines()
    assert r.exit_code == code, (argv, r.output)
    assert len(lines) == 1, r.output  # exactly one line
    assert lines[0].startswith("error: "), r.output
    assert needle in lines[0], (needle, r.output)
    assert "Traceback" not in r.output and "internal error" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    # nothing left behind, nothing already written lost or changed
    assert _tree(ws.tmp, ws.models) == before


def test_the_catalogue_is_large_enough():
    kinds = {cid.split("-")[0] for cid in CASES}
    assert len(CASES) >= 150, len(CASES)
    assert {"csv", "npz", "svm", "model", "opt", "toml", "out", "predict", "compare"} <= kinds


# ---- the Python API: typed exceptions, never a raw NumPy / OS error ------------------------------
def _api_huge_fit(tmp):
    from boostnet import BoostNetClassifier

    X = np.random.default_rng(0).standard_normal((40, 2))
    BoostNetClassifier(max_units=2, n_candidates=64).fit(X * 1e100, X[:, 0] > 0)


def _api_load_huge_header(tmp):
    import boostnet

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    p = (
        boostnet.BoostNetClassifier(max_units=1, n_candidates=32)
        .fit(X, X[:, 0] > 0)
        .save(tmp / "m.npz")
    )
    boostnet.load(_huge_header(p, "hidden_weights"))


def _api_split_overflow(tmp):
    from boostnet.app.datasets import Dataset
    from boostnet.app.experiment import RunConfig, make_split

    X = np.full((20, 1), -1.7e308)
    X[0] = 1.7e308
    make_split(Dataset("x", X, np.arange(20) % 2, "classification", "t"), RunConfig())


API_CASES = {
    "api-fit-inputs-times-1e100": (_api_huge_fit, DataError, "standardise"),
    "api-load-missing": (lambda t: __import__("boostnet").load(t / "no.npz"), ModelFileError, "not found"),
    "api-load-huge-header": (_api_load_huge_header, ModelFileError, "declares"),
    "api-load-directory": (lambda t: __import__("boostnet").load(t), ModelFileError, "directory"),
    "api-config-standardize-string": (
        lambda t: _from_mapping({"standardize": "no"}), ConfigError, "standardize"),
    "api-config-test-size-string": (
        lambda t: _from_mapping({"test_size": "0.3"}), ConfigError, "test_size"),
    "api-config-params-number": (lambda t: _from_mapping({"params": 5}), ConfigError, "params"),
    "api-config-param-value": (
        lambda t: _from_mapping({"max_units": -1}), ConfigError, "max_units"),
    "api-read-config-not-utf8": (
        lambda t: _read_config(t, b"a = '\xff'\n"), ConfigError, "c.toml"),
    "api-csv-duplicate-target": (
        lambda t: _load(t, "d.csv", "a,a,y\n1,2,0\n", target="a"), DataError, "appears 2 times"),
    "api-csv-numbered-header": (
        lambda t: _load(t, "d.csv", "1,2,3\n5,6,0\n7,8,1\n9,1,0\n"), DataError, "header"),
    "api-svmlight-index-1e12": (
        lambda t: _load(t, "d.svm", "0 1:1 1000000000000:1\n"), DataError, "d.svm"),
    "api-svmlight-index-1e8": (
        lambda t: _load(t, "d.svm", "0 1:1 100000000:1\n1 1:2\n0 1:3\n"), DataError, "GiB"),
    "api-split-overflow": (_api_split_overflow, DataError, "too large to standardise"),
    "api-compare-misspelt-dataset": (
        lambda t: _compare_cfg(datasets=["irsi"]).validate(), ConfigError, "did you mean"),
    "api-reserve-under-a-file": (
        lambda t: _reserve((t / "f").write_text("x") and t / "f" / "run"), ConfigError,
        "cannot create"),
    "api-reserve-existing": (lambda t: _reserve(t), ConfigError, "already exists"),
    "api-fit-constant-features": (
        lambda t: _fit("clf", np.ones((30, 3)), np.arange(30) % 3), DataError,
        "every feature is constant over the 30"),
    "api-fit-constant-features-auto": (
        lambda t: _fit("clf", np.ones((30, 2)), np.arange(30) % 2, alpha="auto"), DataError,
        "every feature is constant"),
    "api-fit-constant-features-weighted": (  # varying only on rows of weight 0
        lambda t: _fit("reg", np.r_[np.ones((20, 2)), np.eye(2)], np.arange(22.0),
                       sample_weight=np.r_[np.ones(20), 0, 0]), DataError,
        "constant over the 20"),
    "api-fit-constant-target": (
        lambda t: _fit("reg", np.arange(40.0).reshape(20, 2), np.full(20, 3.5)), DataError,
        "target is constant"),
    "api-lambda-max-zero": (
        lambda t: __import__("boostnet._greedy")._greedy._lambda_max(0.0), DataError,
        "lambda_max = 0"),
}  # fmt: skip


def _fit(kind, X, y, sample_weight=None, **params):
    from boostnet import BoostNetClassifier, BoostNetRegressor

    est = (BoostNetClassifier if kind == "clf" else BoostNetRegressor)(random_state=0, **params)
    return est.fit(X, y, sample_weight=sample_weight)


def _from_mapping(d):
    from boostnet.app.experiment import RunConfig

    return RunConfig.from_mapping(d)


def _read_config(tmp, raw):
    from boostnet.app.experiment import read_config

    (tmp / "c.toml").write_bytes(raw)
    return read_config(tmp / "c.toml")


def _load(tmp, name, text, **kw):
    from boostnet.app.datasets import load_data

    (tmp / name).write_text(text)
    return load_data(str(tmp / name), **kw)


def _compare_cfg(**kw):
    from boostnet.app.compare import CompareConfig

    return CompareConfig(methods=["linear"], **kw)


def _reserve(path):
    from boostnet.app.experiment import reserve_run_dir

    return reserve_run_dir(path)


@pytest.mark.parametrize("cid", list(API_CASES))
def test_api_bad_input(cid, tmp_path):
    fn, exc, needle = API_CASES[cid]
    before = _tree(tmp_path)
    with pytest.raises(exc) as info:
        fn(tmp_path)
    assert needle in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    leftovers = [p for p in _tree(tmp_path) if ".tmp-" in p and p not in before]
    assert not leftovers


# ---- behaviours that take more than one input ----------------------------------------------------
def _train(*argv):
    return runner.invoke(app, ["train", *[str(a) for a in argv]])


def _no_temporaries(root: Path):
    assert not [p for p in _tree(root) if ".tmp-" in p], _tree(root)


def test_features_near_1e200_train_a_real_model(tmp_path):
    """Issue 13.5: the standard deviation overflowed, every feature became 0 and the fit returned
    a 0-unit 'certificate' at chance. Now the standardisation is robust and the model is real."""
    from sklearn.datasets import make_moons

    X, y = make_moons(80, noise=0.1, random_state=0)
    data = tmp_path / "big.csv"
    np.savetxt(data, np.column_stack([X * 1e200, y]), delimiter=",", header="a,b,y", comments="")
    r = _train("--data", data, "--out", tmp_path / "r", "--json", *FAST)
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["units"] >= 1 and m["test_accuracy"] >= 0.75, m
    # the saved standardisation is finite and predict reproduces the test metric
    r = runner.invoke(app, ["evaluate", str(tmp_path / "r"), "--split", "test", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == m["test_accuracy"]


def test_two_runs_in_the_same_second_both_keep_their_run(tmp_path, monkeypatch):
    """Issue 13.1: the default run directory is reserved (mkdir) before training; a name another
    run holds is skipped; and a name taken between reservation and rename never loses the run."""
    import boostnet.app.experiment as ex

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ex, "default_run_dir", lambda data, root="runs": Path("runs/same-iris"))
    (tmp_path / "runs" / "same-iris").mkdir(parents=True)  # the other run holds the name
    r = _train("--data", "iris", *FAST)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / "same-iris-2" / "model.npz").exists()
    assert list((tmp_path / "runs" / "same-iris").iterdir()) == []
    # the reserved name filled by someone else before the rename: the run goes next to it
    res = ex.reserve_run_dir(tmp_path / "runs" / "x")
    (res.path / "intruder.txt").write_text("x")
    (res.tmp / "model.npz").write_text("m")
    final = ex._rename_into_place(res.tmp, res.path)
    assert final.name == "x-2" and (final / "model.npz").exists()
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_run_is_written_waits_for_the_write(signum, code, tmp_path, monkeypatch):
    """Issue 13.2: Ctrl-C (or SIGTERM) in the second the run directory is written threw the
    finished model away ('nothing written', or a hidden .NAME.tmp-* folder). Now the write
    completes, then the command exits 130 (143)."""
    import boostnet.app.plots as plots

    if signal.getsignal(signum) is signal.SIG_IGN:  # e.g. a shell's background job: SIGINT
        pytest.skip("the signal is inherited as ignored here, and boostnet keeps it so")

    original = plots.plot_objective

    def interrupted(*a, **k):
        os.kill(os.getpid(), signum)
        return original(*a, **k)

    monkeypatch.setattr(plots, "plot_objective", interrupted)
    r = _train("--data", "iris", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == code, r.output
    assert "complete in" in r.output and "Traceback" not in r.output
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["stop_reason"] != "interrupted"
    assert (tmp_path / "r" / "model.npz").exists() and (tmp_path / "r" / "summary.md").exists()
    _no_temporaries(tmp_path)


def test_sigterm_during_training_is_like_ctrl_c(tmp_path, monkeypatch):
    """SIGTERM exited 143 with nothing written; now it stops at the end of the step, writes the
    model so far and exits 143."""
    import boostnet.callbacks as cb

    original = cb.MetricCurve.on_step_network

    def step(self, record, network):
        if record.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, record, network)

    monkeypatch.setattr(cb.MetricCurve, "on_step_network", step)
    r = _train("--data", "iris", "--out", tmp_path / "r", "--n-candidates", "128", "--no-progress")
    assert r.exit_code == 143, r.output
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["stop_reason"] == "interrupted"
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_training_writes_nothing_and_leaves_nothing(
    signum, code, tmp_path, monkeypatch
):
    import boostnet.app.experiment as ex

    original = ex.load_for

    def load(cfg):
        os.kill(os.getpid(), signum)
        time.sleep(0.1)
        return original(cfg)

    monkeypatch.setattr(ex, "load_for", load)
    r = _train("--data", "iris", "--out", tmp_path / "sub" / "r", *FAST)
    assert r.exit_code == code, r.output
    assert r.output.strip().splitlines() == [
        "interrupted before training finished; nothing written"
    ]
    assert list(tmp_path.iterdir()) == []  # neither the reserved folder nor its parent


def test_ctrl_c_while_starting_is_one_line(tmp_path):
    """A Ctrl-C while NumPy, scikit-learn and typer load printed a 59-line KeyboardInterrupt
    traceback: `boostnet` now imports lazily and the entry point catches it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "boostnet", "train", "--data", "iris", "--out", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "interrupted" in stderr
    assert list(tmp_path.iterdir()) == []


def test_an_inherited_sig_ign_is_respected():
    """A job started with SIGINT ignored (nohup, `cmd &` in a script) must not stop on it."""
    from boostnet._signals import deferred_signals, terminate_as_interrupt
    from boostnet.callbacks import StopOnInterrupt

    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    saved_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        s = StopOnInterrupt()
        s.on_fit_begin({})
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        s.on_fit_end(None)
        with deferred_signals() as received, terminate_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
        assert received == []
    finally:
        signal.signal(signal.SIGINT, saved)
        signal.signal(signal.SIGTERM, saved_term)


def test_files_and_folders_respect_the_umask(tmp_path, models):
    """Files were written 0600 and folders 0700 whatever the umask (mkstemp / mkdtemp)."""
    from boostnet.io import current_umask

    mask = current_umask()
    run = models / "run"
    assert run.stat().st_mode & 0o777 == 0o777 & ~mask
    for f in ("model.npz", "metrics.json", "config.toml"):
        assert (run / f).stat().st_mode & 0o777 == 0o666 & ~mask, f
    r = runner.invoke(
        app, ["predict", str(run), "--data", "iris", "--out", str(tmp_path / "p.csv")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.csv").stat().st_mode & 0o777 == 0o666 & ~mask


def test_predict_without_a_target_column(tmp_path, models):
    data = tmp_path / "u.csv"
    data.write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    r = runner.invoke(app, ["predict", str(models / "run"), "--data", str(data), "--no-target"])
    assert r.exit_code == 0, r.output
    rows = r.stdout.strip().splitlines()
    assert rows[0].split(",")[:2] == ["prediction", "p_0"] and len(rows) == 3


def test_a_model_saved_before_the_checksum_still_loads(tmp_path, models):
    import boostnet

    ws = Workspace(tmp_path, models)
    old = ws.tampered("old.npz")  # the same file without its sha256
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(boostnet.load(old).predict(X), boostnet.load(ws.model).predict(X))


def test_compare_resume_drops_a_torn_row_and_old_error_rows(tmp_path):
    """Issue 13.3: a torn last row counted as done (and the next row went onto its line); failed
    runs kept their error rows and got new ones (6 rows for 4 runs)."""
    from boostnet.app.compare import COLUMNS, CompareConfig, compare, read_rows

    # two fast methods ("hgb" is a second logistic regression under another name)
    cfg = CompareConfig(
        datasets=["iris"],
        methods=["linear", {"name": "hgb", "method": "linear", "C": 0.5}],
        seeds=2,
    )
    out = tmp_path / "c"
    out.mkdir()
    rows = out / "rows.csv"
    ok = dict.fromkeys(COLUMNS, "")
    ok.update(dataset="iris", method="linear", seed="0", fold="0", status="ok", task="classification",
              accuracy="0.9", fit_time_s="0.1")  # fmt: skip
    err = dict(ok, method="hgb", status="error", error="Boom", accuracy="")
    text = ",".join(COLUMNS) + "\n" + ",".join(ok[c] for c in COLUMNS) + "\n"
    text += ",".join(err[c] for c in COLUMNS) + "\n"
    text += "iris,linear,1,0,o"  # torn by a kill during its write
    rows.write_text(text)
    res = compare(cfg, out=out, resume=True)
    got = read_rows(rows)
    assert len(got) == 4 and len(res.rows) == 4  # 4 runs, 4 rows
    assert all(r["status"] == "ok" for r in got)
    assert sorted((r["method"], r["seed"]) for r in got) == [
        ("hgb", "0"), ("hgb", "1"), ("linear", "0"), ("linear", "1")
    ]  # fmt: skip
    assert rows.read_text().count("\n") == 5 and rows.read_text().endswith("\n")
    _no_temporaries(tmp_path)


# ---- property-based inputs -----------------------------------------------------------------------
PROPS = settings(
    max_examples=int(os.environ.get("BOOSTNET_HYPOTHESIS_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _check_dataset(ds):
    assert ds.X.dtype == np.float64 and ds.X.ndim == 2 and np.all(np.isfinite(ds.X))
    assert ds.y.shape[0] == ds.X.shape[0]
    assert ds.task in ("classification", "regression")


@PROPS
@given(st.text(alphabet="0123456789,.-e\n abnaifxy\t\"'", max_size=200))
def test_any_csv_is_a_dataset_or_one_data_error(tmp_path, text):
    from boostnet.app.datasets import load_data

    p = tmp_path / "h.csv"
    p.write_text(text)
    try:
        ds = load_data(str(p))
    except DataError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    _check_dataset(ds)


_RUN_KEYS = ["data", "target", "task", "n_samples", "noise", "n_features", "data_dir",
             "test_size", "train_size", "seed", "standardize", "params", "max_units",
             "activation", "alpha", "tol", "refine"]  # fmt: skip
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["max_units", "colour"]), st.integers(-3, 3), max_size=2),
)


@PROPS
@given(st.dictionaries(st.sampled_from(_RUN_KEYS), _VALUES, max_size=5))
def test_any_configuration_is_checked_or_one_config_error(mapping):
    from boostnet.app.experiment import RunConfig

    try:
        cfg = RunConfig.from_mapping(mapping)
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    assert isinstance(cfg.standardize, bool) and isinstance(cfg.seed, int) and cfg.seed >= 0
    assert isinstance(cfg.test_size, (int, float)) and not isinstance(cfg.test_size, bool)
    assert cfg.test_size >= 1 if isinstance(cfg.test_size, int) else 0 < cfg.test_size < 1
    assert isinstance(cfg.params, dict)


@PROPS
@given(st.binary(max_size=120))
def test_any_toml_bytes_read_or_one_config_error(tmp_path, raw):
    from boostnet.app.experiment import read_config

    p = tmp_path / "c.toml"
    p.write_bytes(raw)
    try:
        assert isinstance(read_config(p), dict)
    except ConfigError as exc:
        assert "c.toml" in str(exc) and len(str(exc).splitlines()) == 1


def _full(shape, fill, kind):
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.full(shape, fill).astype(kind)


_ARRAYS = st.builds(
    lambda shape, kind, fill: _full(shape, fill, kind),
    st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    st.sampled_from(["float64", "float32", "int64", "bool", "U3", "complex128"]),
    st.sampled_from([0, 1, 2.5, np.nan, np.inf, 1e308]),
)


@PROPS
@given(st.dictionaries(st.sampled_from(["X", "y", "X_test", "y_test", "z"]), _ARRAYS, max_size=4))
def test_any_npz_is_a_dataset_or_one_data_error(tmp_path, arrays):
    from boostnet.app.datasets import load_data

    p = tmp_path / "h.npz"
    np.savez(p, **arrays)
    try:
        ds = load_data(str(p))
    except DataError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    _check_dataset(ds)


@PROPS
@given(st.integers(0, 10**6), st.integers(1, 255))
def test_any_corrupted_model_byte_loads_or_is_one_model_file_error(tmp_path, models, pos, xor):
    import boostnet

    raw = bytearray((models / "api.npz").read_bytes())
    raw[pos % len(raw)] ^= xor
    p = tmp_path / "m.npz"
    p.write_bytes(bytes(raw))
    try:
        boostnet.load(p)
    except ModelFileError as exc:
        assert len(str(exc).splitlines()) == 1


def test_ctrl_c_while_a_compare_row_is_written_keeps_the_row_whole(tmp_path, monkeypatch):
    import boostnet.app.compare as cmp

    original = cmp.RowWriter.write

    def write(self, row):
        os.kill(os.getpid(), signal.SIGINT)
        return original(self, row)

    monkeypatch.setattr(cmp.RowWriter, "write", write)
    cfg = cmp.CompareConfig(datasets=["iris"], methods=["linear"], seeds=2)
    res = cmp.compare(cfg, out=tmp_path / "c")
    assert res.interrupted and len(res.rows) == 1
    text = (tmp_path / "c" / "rows.csv").read_text()
    assert text.endswith("\n") and len(cmp.read_rows(tmp_path / "c" / "rows.csv")) == 1


def test_a_fit_that_raises_gives_the_signal_handlers_back():
    """StopOnInterrupt in library use: when the fit raises, the callbacks still get on_fit_end
    (with None), so Ctrl-C works again afterwards instead of being swallowed by a stale handler."""
    from sklearn.datasets import load_iris

    from boostnet import BoostNetClassifier
    from boostnet.callbacks import StopOnInterrupt

    X, y = load_iris(return_X_y=True)
    seen = []

    class Boom:
        def on_step_end(self, record):
            if record.step == 2:
                raise RuntimeError("a callback failed")

        def on_fit_end(self, result):
            seen.append(result)

    before = signal.getsignal(signal.SIGINT)
    est = BoostNetClassifier(random_state=0, callbacks=[StopOnInterrupt(), Boom()])
    with pytest.raises(RuntimeError, match="a callback failed"):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is before
    assert seen == [None]


@pytest.mark.parametrize("alpha", ["ratio", "auto"])
def test_the_regressor_fits_one_model_at_any_scale_of_the_targets(alpha):
    """Targets of ~1e-10 (a quantity in its SI unit) got another model than the same targets
    scaled to ~1: relative tolerances had absolute floors (1e-12 on the objective, 1e-15 on the
    sweeps' tolerance, 1e-12 on the path's held-out improvements), which bound at objectives of
    ~1e-20: ``alpha="auto"`` kept its first point (1 unit, R^2 0.18 instead of 0.92), and the
    tight re-fits of ``"ratio"`` stopped short of their gap (49 steps instead of 17, 1e-12: no
    certificate in 20 s). Now the fit is the same, up to rounding, from 1e-15 to 1e16."""
    from boostnet import BoostNetRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = np.sin(2 * X[:, 0])
    fits = {}
    for scale in (1.0, 1e-10, 1e12):
        est = BoostNetRegressor(random_state=0, alpha=alpha).fit(X, y * scale)
        fits[scale] = est
        assert est.stop_reason_ == "certificate"
    ref = fits[1.0]
    for scale, est in fits.items():
        assert est.n_units_ == ref.n_units_ and est.n_iter_ == ref.n_iter_, scale
        assert est.alpha_ / scale == pytest.approx(ref.alpha_, rel=1e-9)
        assert est.score(X, y * scale) == pytest.approx(ref.score(X, y), abs=1e-3)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_targets_beyond_float32s_squares_still_fit_without_warnings(scale):
    """At ~1e-30 the slide's float32 output weights squared to 0 (a division by zero, and 0 units
    at R^2 0 before the tolerances above were relative); at ~1e30 they overflow. The slide now
    takes their norms in float64 (or stays put) and the fit is a real one."""
    from boostnet import BoostNetRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = np.sin(2 * X[:, 0]) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = BoostNetRegressor(random_state=0, max_time=60).fit(X, y)  # alpha="auto"
    assert est.stop_reason_ == "certificate" and est.n_units_ >= 5
    assert est.score(X, y) > 0.9


def test_relu_rows_whose_squares_overflow_float32_are_refused():
    from boostnet import BoostNetClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(DataError, match="standardise the features") as info:
        BoostNetClassifier(random_state=0).fit(X * 1e20, y)
    assert len(str(info.value).splitlines()) == 1
    # bounded activations square nothing large: the same rows fit (and the rule leaves 1e17 be)
    assert BoostNetClassifier(random_state=0, activation="tanh").fit(X * 1e20, y).n_units_ >= 1
    assert BoostNetClassifier(random_state=0).fit(X * 1e17, y).score(X * 1e17, y) == 1.0


def test_a_validation_score_improves_by_a_margin_relative_to_its_size():
    from boostnet.metrics import improves

    assert improves(-1.0, -math.inf) and not improves(-math.inf, -math.inf)
    assert improves(-1e-16, -2e-16)  # held-out squared errors of targets of ~1e-8
    assert not improves(-1.0 + 1e-13, -1.0) and improves(-1.0 + 1e-11, -1.0)
    assert not improves(0.5, 0.5)


def test_the_classifier_certifies_features_of_1e_10_as_those_of_1():
    """Features of ~1e-8 (a length in metres of something micrometre-sized) stalled: a re-fit's
    inexact intercept left ``1^T G`` nonzero, every unit scored it through its mean activation,
    and where the features (hence lambda and the units' real scores) are ~1e-8 that residue won:
    nearly constant units entered and the loop stalled without a certificate. The pools are now
    scored after a Newton step on the intercept (columns of ``G`` summing to zero)."""
    from boostnet import BoostNetClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = (np.sin(2 * X[:, 0]) + X[:, 1] > 0).astype(int)
    ref = BoostNetClassifier(random_state=0).fit(X, y)
    assert ref.stop_reason_ == "certificate"
    # (the unit sphere holds the bias too: the problem at 1 is another one, and lambda_max is
    # read from a random pool, so the lambdas differ by a few percent: no exact comparison)
    for scale in (1e-6, 1e-10):
        est = BoostNetClassifier(random_state=0, max_time=60).fit(X * scale, y)
        assert est.stop_reason_ == "certificate", scale
        assert est.score(X * scale, y) >= ref.score(X, y) - 0.03
        assert est.n_units_ <= 2 * ref.n_units_ + 5


def test_a_regression_on_features_of_1e_7_ends_instead_of_tightening_forever():
    """Unstandardised features of ~1e-7 under squared error: every tightening's re-fit ended
    short of ``refit_tol`` (200 outer iterations, the relative gap stuck at ~3e-3), the next
    pool was clean, the loop tightened again, and each try lowered the objective by a hair, so
    the stall window never ran out: the fit ran until ``max_time`` (300 steps in 5 s, for ever
    without one). Three such tightenings in a row now stop it as ``stalled``."""
    from boostnet import BoostNetRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X[:, 0] + np.sin(X[:, 1])
    est = BoostNetRegressor(random_state=0, alpha="ratio", max_time=60).fit(X * 1e-7, y)
    assert est.stop_reason_ in ("certificate", "stalled"), est.stop_reason_
    assert est.n_iter_ < 100
    assert est.score(X * 1e-7, y) >= 0.9  # the network it stopped with still fits


@pytest.mark.parametrize(
    "task, n_classes, seed, scale",
    [
        ("regression", 0, 0, 1e-8),  # stalled after 3 steps, R^2 0.12
        ("classification", 2, 0, 1e-7),  # stalled after 3 steps, accuracy 0.51 (chance)
        ("classification", 4, 0, 1e-8),  # intercepts drifted to 1.6e6 (refit._recentred)
        ("classification", 5, 2, 1e-6),  # a unit of spread 0.011: an indefinite model
    ],
)
def test_nearly_constant_units_on_tiny_features_still_reach_a_certificate(
    task, n_classes, seed, scale
):
    """Unstandardised features of ~1e-8..1e-6: relu units whose bias dominates vary by a hair
    around a constant. The re-fit's float32 curvature model lost their curvature (the centred
    ``B - s mu mu^T`` is their spread squared), the intercepts drifted along softmax's null space,
    and fits ended ``stalled`` with networks that had learnt little or nothing. With the units'
    means taken off before the float32 products and the intercepts re-centred, they certify and
    fit as the unscaled data does."""
    from sklearn.datasets import make_classification

    from boostnet import BoostNetClassifier, BoostNetRegressor

    if task == "regression":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((200, 3))
        y = X[:, 0] + np.sin(X[:, 1])
        Est = BoostNetRegressor
        kw = {"alpha": "ratio"}
    else:
        X, y = make_classification(
            n_samples=300 if n_classes < 5 else 240, n_features=4 if n_classes < 5 else 5,
            n_informative=3, n_redundant=0, n_classes=n_classes, n_clusters_per_class=1,
            random_state=seed,
        )  # fmt: skip
        Est, kw = BoostNetClassifier, {}
    ref = Est(random_state=seed, **kw).fit(X, y)
    est = Est(random_state=seed, max_time=60, **kw).fit(X * scale, y)
    assert est.stop_reason_ == "certificate"
    # (the unit sphere holds the bias too, so the problem at another scale is another one: a
    # few points apart, where the failures were tens)
    assert est.score(X * scale, y) >= ref.score(X, y) - 0.05


def test_train_without_standardising_features_of_1e_10_certifies(tmp_path):
    """The command line's side of the case above: ``--no-standardize`` hands the features to the
    fit as they are; at ~1e-10 the run used to end ``stalled``, now it certifies."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = (np.sin(2 * X[:, 0]) + X[:, 1] > 0).astype(int)
    data = tmp_path / "tiny.csv"
    np.savetxt(data, np.column_stack([X * 1e-10, y]), delimiter=",", header="a,b,c,y",
               comments="")  # fmt: skip
    r = _train("--data", data, "--out", tmp_path / "r", "--json", "--no-standardize",
               "--no-progress")  # fmt: skip
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["stop_reason"] == "certificate" and m["test_accuracy"] >= 0.8, m
