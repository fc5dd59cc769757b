"""``experiments/_rows.py``: the benchmark scripts' tidy rows, their provenance and their CSV file;
and one script (``speed_suite.py`` on iris) writing its rows through it end to end."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.fixture
def rows_mod(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    return importlib.import_module("_rows")


def read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_columns_are_the_union_of_the_rows_keys_in_first_seen_order(rows_mod, tmp_path):
    rows = [{"set": "digits", "accuracy": 0.98}, {"set": "diabetes", "r2": 0.37, "accuracy": None}]
    path = rows_mod.write_rows(tmp_path / "sub" / "r.csv", rows)
    assert path == tmp_path / "sub" / "r.csv"
    with open(path, newline="") as fh:
        assert next(csv.reader(fh)) == ["set", "accuracy", "r2"]
    got = read(path)
    assert got[0] == {"set": "digits", "accuracy": "0.98", "r2": ""}
    assert got[1] == {"set": "diabetes", "accuracy": "", "r2": "0.37"}


def test_no_rows_is_an_error_and_the_previous_file_stays(rows_mod, tmp_path):
    path = tmp_path / "r.csv"
    rows_mod.write_rows(path, [{"a": 1}])
    before = path.read_bytes()
    with pytest.raises(ValueError, match="no results"):
        rows_mod.write_rows(path, [])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temporary file left


def test_provenance_names_what_a_figure_depends_on(rows_mod):
    import boostnet

    prov = rows_mod.provenance(device="gpu")
    assert prov["boostnet_version"] == boostnet.__version__
    assert prov["device"] == "gpu"
    for key in ("numpy", "sklearn", "python", "machine", "blas", "date"):
        assert key in prov
    # the CPU's model and the cores: ratios to a baseline fitted alongside move with them
    assert prov["cpu"] and isinstance(prov["cpu"], str)
    assert isinstance(prov["cores"], int) and prov["cores"] >= 1


def test_speed_suite_writes_one_tidy_row_per_set_and_seed(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    speed_suite.main(["--sets", "iris", "--seeds", "0,1", "--out", str(tmp_path)])
    got = read(tmp_path / "speed.csv")
    assert [r["seed"] for r in got] == ["0", "1"]
    assert all(r["data"] == "iris" and r["stop"] == "certificate" for r in got)
    assert all(
        float(r["ratio"]) == pytest.approx(float(r["boostnet_s"]) / float(r["mlp_s"])) for r in got
    )
    assert all(r["boostnet_version"] and r["date"] for r in got)
    assert (tmp_path / "speed.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "geometric mean" in out and "issue 11's targets:" in out


def _summary_row(data, ratio, metric, mlp, stop="certificate", seconds=1.0):
    return {"data": data, "ratio": ratio, "boostnet": metric, "mlp": mlp, "stop": stop,
            "boostnet_s": seconds}  # fmt: skip


def test_speed_suite_targets_name_each_missed_one_with_three_decimals(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    rows = [
        _summary_row("digits", 1.6, 0.98, 0.9778, seconds=1.17),
        _summary_row("wine", 0.2, 1.0, 1.0),
        _summary_row("fashion-10k", 3.004, 0.8508, 0.8530),
    ]
    got = {what: (figures, met) for what, figures, met in speed_suite.targets(rows, {})}
    assert all(met for what, (_, met) in got.items() if "3x" not in what)
    # 3.004 shows as 3.00 in the table: here it is named, with its third decimal, and missed
    assert got["no set above 3x"] == ("fashion-10k 3.004", False)
    assert got["geometric mean of the ratios <= 1"][0] == "0.987"
    # each other target can fail on its own
    slow = [_summary_row("digits", 1.6, 0.98, 0.97, seconds=1.6)]
    low = [_summary_row("wine", 0.5, 0.95, 0.97), _summary_row("iris", 0.5, 0.99, 0.98)]
    capped = [_summary_row("iris", 0.5, 1.0, 1.0, stop="max_time")]
    missed = {
        what
        for rows_, params in ((slow, {}), (low, {}), (capped, {}), (rows[1:2], {"max_time": 9}))
        for what, _, met in speed_suite.targets(rows_, params)
        if not met
    }
    assert missed == {
        "digits >= 0.98 with a certificate in <= 1.5 s",
        "geometric mean of the ratios <= 1",  # slow's 1.6
        "metric at least the MLP's on average",  # low's -0.005
        "no set more than 0.01 below the MLP's metric",  # low's wine -0.02
        "every set ends by certificate, without max_time",  # capped, and max_time set
    }


def test_speed_suite_rows_name_the_device_each_fit_ran_on(fake_cupy, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    args = ["--sets", "iris", "--ablation", "device=cpu,gpu", "--out", str(tmp_path)]
    speed_suite.main([*args, "--params", '{"max_units": 3, "n_candidates": 64}'])
    assert [r["device"] for r in read(tmp_path / "speed.csv")] == ["cpu", "gpu"]


def test_speed_suite_ablation_values_and_malformed_options(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    # an ablation's values: JSON where they parse, else the bare string
    assert [speed_suite._value(v) for v in ("8", "true", "null", '"x"', "1se")] == [
        8,
        True,
        None,
        "x",
        "1se",
    ]
    for bad in (["--ablation", "selection"], ["--ablation", "=1,2"], ["--params", "{x"],
                ["--params", "[1]"]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            speed_suite.main([*bad, "--sets", "iris", "--out", str(tmp_path / "x")])
        assert exc.value.code == 2
    assert not (tmp_path / "x").exists()
    assert "usage" in capsys.readouterr().err


def test_speed_suite_switches_set_a_module_constant_for_each_fit_and_restore_it(
    monkeypatch, tmp_path
):
    from boostnet import _greedy

    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    before = _greedy._TAIL_SLIDE_MAX
    with speed_suite.switched({"boostnet._greedy._TAIL_SLIDE_MAX": 0}):
        assert _greedy._TAIL_SLIDE_MAX == 0
    assert _greedy._TAIL_SLIDE_MAX == before
    with pytest.raises(RuntimeError), speed_suite.switched({"boostnet._greedy._TAIL_SLIDE_MAX": 0}):
        raise RuntimeError  # restored on the way out of a failed fit too
    assert _greedy._TAIL_SLIDE_MAX == before
    # the fits see it: a spy on the loop reads the constant while fitting
    seen, real = [], _greedy._Loop.slide_budget

    def budget(self, m):
        seen.append(_greedy._TAIL_SLIDE_MAX)
        return real(self, m)

    monkeypatch.setattr(_greedy._Loop, "slide_budget", budget)
    speed_suite.main(["--sets", "iris", "--out", str(tmp_path),
                      "--ablation", "boostnet._greedy._TAIL_SLIDE_MAX=16,3"])  # fmt: skip
    assert set(seen) == {16, 3} and _greedy._TAIL_SLIDE_MAX == before
    got = read(tmp_path / "speed.csv")
    assert [json.loads(r["params"]) for r in got] == [
        {"boostnet._greedy._TAIL_SLIDE_MAX": 16},
        {"boostnet._greedy._TAIL_SLIDE_MAX": 3},
    ]
    # names joined by "+" take each value together
    speed_suite.main(["--sets", "iris", "--out", str(tmp_path / "both"), "--ablation",
                      "boostnet._greedy._TAIL_SLIDE_MAX+boostnet._greedy._STALL_WINDOW=40,50"])  # fmt: skip
    assert [json.loads(r["params"]) for r in read(tmp_path / "both" / "speed.csv")] == [
        {"boostnet._greedy._TAIL_SLIDE_MAX": v, "boostnet._greedy._STALL_WINDOW": v}
        for v in (40, 50)
    ]
    for bad in ("boostnet._greedy._NO_SUCH=1", "os.path=1", "boostnet.nomodule.X=1",
                "boostnet._greedy._STALL_WINDOW+=1"):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            speed_suite.main(["--sets", "iris", "--out", str(tmp_path / "x"), "--ablation", bad])
        assert exc.value.code == 2
    assert not (tmp_path / "x").exists()


def test_slide_replay_replays_a_fits_slides_both_ways_and_restores_the_library(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    slide_replay = importlib.import_module("slide_replay")
    from boostnet import _greedy
    from boostnet import slide as slide_module

    before = (_greedy.slide, slide_module._CONJUGATE)
    slide_replay.main(["--set", "iris", "--min-steps", "1", "--every", "1"])
    assert (_greedy.slide, slide_module._CONJUGATE) == before
    rows = [
        ln
        for ln in capsys.readouterr().out.splitlines()
        if ln.startswith("| ") and "|---" not in ln
    ]
    assert len(rows) > 1  # the header and at least one slide
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        figures = [float(v) for part in cells[3:5] for v in part.split(" / ")]
        assert all(v >= 0 for v in figures)  # a slide never raises the loss


def test_speed_suite_pairs_each_variant_with_the_first_seed_by_seed(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    a, b = {"x": 1}, {"x": 2}
    ka, kb = (json.dumps(p, sort_keys=True) for p in (a, b))

    def row(params, seed, secs, objective, steps):
        return {"data": "d", "params": params, "seed": seed, "boostnet_s": secs, "mlp_s": 1.0,
                "objective": objective, "steps": steps, "ratio": secs}  # fmt: skip

    rows = [row(ka, 0, 2.0, 1.0, 10), row(kb, 0, 1.0, 0.99, 8),
            row(ka, 1, 4.0, 2.0, 20), row(kb, 1, 6.0, 2.0, 30)]  # fmt: skip
    (c,) = speed_suite.paired(rows, [a, b])
    assert c["params"] == kb and c["seeds"] == 2 and c["faster"] == 1
    assert (c["time"], c["time_lo"], c["time_hi"]) == pytest.approx((1.0, 0.5, 1.5))
    assert c["objective"] == pytest.approx(-0.005)
    assert c["steps"] == (15.0, 19.0)
    # a variant's seed without the first's is left out, not paired with another seed
    assert speed_suite.paired([rows[1]], [a, b]) == []
    # the table's per-seed spread of the ratios
    for r in rows:
        r.update(data="d", metric="accuracy", boostnet=1.0, mlp=1.0, units=1, stop="certificate")
    (s,) = [r for r in speed_suite.summarise(rows) if r["params"] == ka]
    assert (s["ratio_lo"], s["ratio_hi"]) == (2.0, 4.0)


def test_read_rows_gives_back_what_write_rows_wrote(rows_mod, tmp_path):
    rows = [{"data": "c26", "seed": 1, "ratio": 2.5, "params": "{}", "mlp": None, "v": "0.1.0"}]
    path = rows_mod.write_rows(tmp_path / "r.csv", rows)
    assert rows_mod.read_rows(path) == rows  # numbers parsed back, an empty cell None
    (tmp_path / "bad.csv").write_text("a,b\n1,2,3\n")
    (tmp_path / "head.csv").write_text("a,b\n")
    for name in ("missing.csv", "bad.csv", "head.csv"):
        with pytest.raises(ValueError, match=name):
            rows_mod.read_rows(tmp_path / name)


def test_provenance_names_the_sources_commit(rows_mod):
    commit = rows_mod.provenance()["commit"]
    # a git checkout's commit (``-dirty`` with changes), or "" where boostnet is installed
    assert isinstance(commit, str)
    assert commit == "" or commit.split("-")[0].isalnum()


def _run_rows(run_s, mlp_s, cpu="cpu A", commit="abc"):
    """One run's speed.csv rows on one set, seeds 0.. with these times."""
    return [
        {"data": "c26", "params": "{}", "seed": seed, "metric": "accuracy", "boostnet": 0.94,
         "mlp": 0.89, "units": 500, "steps": 300, "stop": "certificate", "objective": 0.48,
         "boostnet_s": b, "mlp_s": m, "ratio": b / m, "cpu": cpu, "commit": commit}
        for seed, (b, m) in enumerate(zip(run_s, mlp_s, strict=True))
    ]  # fmt: skip


def test_speed_suite_pools_runs_of_one_cpu_and_commit(rows_mod, monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    a = rows_mod.write_rows(tmp_path / "a.csv", _run_rows([100.0, 150.0], [40.0, 40.0]))
    b = rows_mod.write_rows(tmp_path / "b.csv", _run_rows([90.0, 130.0], [50.0, 50.0]))
    rows = speed_suite.pooled([a, b])
    assert [r["run"] for r in rows] == [0, 0, 1, 1]
    (s,) = speed_suite.summarise(rows)
    # the mean time over both runs' fits against the MLP's: 470 / 180
    assert s["ratio"] == pytest.approx(470 / 180)
    assert (s["seeds"], s["runs"], s["fits"]) == (2, 2, 4)
    assert (s["ratio_lo"], s["ratio_hi"]) == (pytest.approx(1.8), pytest.approx(3.75))
    assert speed_suite.runs_line(rows, "{}") == ["  c26            3.125 2.200"]
    speed_suite.main(["--pool", str(a), str(b)])
    out = capsys.readouterr().out
    assert "2 runs pooled (commits abc)" in out and "means over 4 fits: 2 runs, 2 seeds" in out
    assert "met    no set above 3x: largest c26 2.611" in out
    # runs of another commit pool, named; runs of another CPU do not, nor a file of other results
    later = rows_mod.write_rows(tmp_path / "l.csv", _run_rows([1.0], [1.0], commit="def"))
    speed_suite.main(["--pool", str(a), str(later)])
    assert "2 runs pooled (commits abc, def)" in capsys.readouterr().out
    other = rows_mod.write_rows(tmp_path / "o.csv", _run_rows([1.0], [1.0], cpu="cpu B"))
    alien = rows_mod.write_rows(tmp_path / "x.csv", [{"data": "c26", "seed": 0}])
    for bad, message in ((other, "differ in cpu"), (alien, "not a speed suite's results file")):
        with pytest.raises(ValueError, match=message):
            speed_suite.pooled([a, bad])
        with pytest.raises(SystemExit) as exc:
            speed_suite.main(["--pool", str(a), str(bad)])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_speed_suite_warms_up_each_set_with_each_seed_before_timing(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    speed_suite = importlib.import_module("speed_suite")
    calls = []
    real_warm_up, real_run_set = speed_suite.warm_up, speed_suite.run_set

    def warm_up(name, params, seed=0):
        calls.append(("warm", name, seed))
        real_warm_up(name, {**params, "max_units": 2}, seed)

    def run_set(name, params, mlp_cache, seed=0):
        calls.append(("timed", name, seed))
        return real_run_set(name, params, mlp_cache, seed)

    monkeypatch.setattr(speed_suite, "warm_up", warm_up)
    monkeypatch.setattr(speed_suite, "run_set", run_set)
    args = ["--sets", "iris", "wine", "--seeds", "0,1", "--out", str(tmp_path)]
    speed_suite.main([*args, "--params", '{"max_units": 3}'])
    assert calls == [
        ("warm", "iris", 0), ("warm", "iris", 1), ("timed", "iris", 0), ("timed", "iris", 1),
        ("warm", "wine", 0), ("warm", "wine", 1), ("timed", "wine", 0), ("timed", "wine", 1),
    ]  # fmt: skip
