"""The command line, through typer's CliRunner and as the installed entry point."""

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from boostnet import __version__
from boostnet.cli import app

runner = CliRunner()


def test_version_and_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "train" in r.output


def test_train_default_json():
    r = runner.invoke(app, ["train", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["data"] == "digits"
    assert m["test_accuracy"] >= 0.975
    assert m["stop_reason"] == "certificate"
    assert 0 < m["units"] <= 120


def test_train_table_on_a_small_set():
    r = runner.invoke(app, ["train", "--data", "iris", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "test_accuracy" in r.output and "stop_reason" in r.output


def test_train_unknown_data_is_one_line_error():
    r = runner.invoke(app, ["train", "--data", "nope"])
    assert r.exit_code == 1
    assert "unknown data set 'nope'" in r.output
    assert "Traceback" not in r.output


def test_train_bad_option_value_is_usage_error():
    r = runner.invoke(app, ["train", "--data", "iris", "--activation", "softplus"])
    assert r.exit_code == 2
    assert "activation" in r.output and "Traceback" not in r.output


def test_installed_entry_point_runs():
    exe = shutil.which("boostnet") or str(
        __import__("pathlib").Path(sys.executable).with_name("boostnet")
    )
    if not __import__("pathlib").Path(exe).exists():
        pytest.skip("the boostnet console script is not installed in this environment")
    out = subprocess.run(
        [exe, "train", "--data", "wine", "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["data"] == "wine"
