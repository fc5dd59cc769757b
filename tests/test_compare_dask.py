"""``boostnet compare --scheduler``: the same rows on a local Dask cluster as with ``--jobs 1``.

A scheduler and one worker run as subprocesses on 127.0.0.1 (a free port); both are stopped when
the fixture ends, also when a test fails.

The worker gets two threads: joblib's Dask backend sizes ``Parallel`` by the cluster's total
thread count, and with exactly one thread it runs everything sequentially in the calling process
without touching the cluster (see ``test_single_thread_cluster_gets_the_runs``).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("dask.distributed")

from distributed import Client  # noqa: E402

from boostnet.app.cli import app  # noqa: E402
from boostnet.app.compare import CompareConfig, compare, read_rows  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
RUN = ["--datasets", "wine,iris", "--methods", "boostnet,linear,mlp-matched", "--seeds", "2"]
VOLATILE = {"fit_time_s", "predict_time_s", "started", "host"}
runner = CliRunner()


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _dask(command: str) -> list[str]:
    """The ``dask scheduler`` / ``dask worker`` command line from this interpreter's venv."""
    exe = Path(sys.executable).parent / "dask"
    if exe.exists():
        return [str(exe), command]
    found = shutil.which("dask")
    if found:
        return [found, command]
    return [sys.executable, "-m", f"distributed.cli.dask_{command}"]


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process started here and its children (it leads its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def _cluster(logs: Path, nthreads: int):
    """A Dask scheduler and one worker with ``nthreads`` threads; yields the scheduler address."""
    port = _free_port()
    address = f"tcp://{HOST}:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    procs = []

    def start(name, args):
        with open(logs / f"{name}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    args,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def log_tail():
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in logs.iterdir()
        )

    try:
        start(
            "scheduler",
            [*_dask("scheduler"), "--host", HOST, "--port", str(port), "--no-dashboard"],
        )
        start(
            "worker",
            [*_dask("worker"), address, "--nworkers", "1", "--nthreads", str(nthreads),
             "--no-dashboard", "--host", HOST],
        )  # fmt: skip
        deadline = time.monotonic() + 45
        registered = False
        while time.monotonic() < deadline and not registered:
            if any(p.poll() is not None for p in procs):
                pytest.fail(f"a Dask process exited early\n{log_tail()}")
            try:
                with Client(address, timeout=5) as client:
                    while time.monotonic() < deadline:
                        if client.scheduler_info().get("workers"):
                            registered = True
                            break
                        time.sleep(0.25)
            except OSError:
                time.sleep(0.5)
        if not registered:
            pytest.fail(f"no Dask worker registered within 45 s\n{log_tail()}")
        yield address
    finally:
        for proc in reversed(procs):  # worker first, then the scheduler
            _stop(proc)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """Address of a local scheduler with one registered two-thread worker."""
    with _cluster(tmp_path_factory.mktemp("dask-logs"), nthreads=2) as address:
        yield address


@pytest.fixture
def single_thread_scheduler(tmp_path_factory):
    """Address of a local scheduler with one registered single-thread worker."""
    with _cluster(tmp_path_factory.mktemp("dask-logs-1"), nthreads=1) as address:
        yield address


def _worker_tasks(address: str) -> int:
    """Tasks the cluster's workers have run so far."""

    def _executed(dask_worker) -> int:  # nested: pickled by value, the worker can't import tests
        state = getattr(dask_worker, "state", dask_worker)
        return int(getattr(state, "executed_count", 0))

    with Client(address, timeout=10) as client:
        return sum(client.run(_executed).values())


def _sorted_rows(folder: Path) -> list[dict]:
    rows = read_rows(folder / "rows.csv")
    return sorted(rows, key=lambda r: (r["dataset"], r["method"], int(r["seed"]), int(r["fold"])))


def test_dask_rows_match_sequential(scheduler, tmp_path):
    seq, dist = tmp_path / "seq", tmp_path / "dask"
    r1 = runner.invoke(app, ["compare", *RUN, "--out", str(seq), "--jobs", "1"])
    assert r1.exit_code == 0, r1.output
    before = _worker_tasks(scheduler)
    r2 = runner.invoke(app, ["compare", *RUN, "--out", str(dist), "--scheduler", scheduler])
    assert r2.exit_code == 0, r2.output
    assert _worker_tasks(scheduler) > before, "the runs did not go to the Dask worker"

    a, b = _sorted_rows(seq), _sorted_rows(dist)
    assert len(a) == len(b) == 2 * 3 * 2  # datasets x methods x seeds, one fold
    assert [r["status"] for r in a + b] == ["ok"] * len(a + b), [r["error"] for r in a + b]
    for ra, rb in zip(a, b, strict=True):
        assert set(ra) == set(rb)
        diff = {k: (ra[k], rb[k]) for k in ra if k not in VOLATILE and ra[k] != rb[k]}
        assert not diff, (ra["dataset"], ra["method"], ra["seed"], ra["fold"], diff)
    # mlp-matched took its width from boostnet's units on the same split
    units = {(r["dataset"], r["seed"]): r["units"] for r in b if r["method"] == "boostnet"}
    for r in b:
        if r["method"] == "mlp-matched":
            assert r["units"] == units[(r["dataset"], r["seed"])]


def test_single_thread_cluster_gets_the_runs(single_thread_scheduler):
    before = _worker_tasks(single_thread_scheduler)
    cfg = CompareConfig(datasets=["iris"], methods=["linear"], seeds=2)
    res = compare(cfg, scheduler=single_thread_scheduler)
    assert [r["status"] for r in res.rows] == ["ok", "ok"]
    assert _worker_tasks(single_thread_scheduler) > before, "the runs did not go to the worker"


def test_unreachable_scheduler_is_a_one_line_usage_error(tmp_path):
    address = f"tcp://{HOST}:{_free_port()}"  # closed: nothing listens there
    cmd = [sys.executable, "-c", "from boostnet.app.cli import main; main()"]
    args = ["compare", "--datasets", "iris", "--methods", "linear", "--seeds", "1"]
    args += ["--out", str(tmp_path / "out"), "--scheduler", address]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd + args, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and address in lines[0], lines[0]
    # compare._connect gives Client(..., timeout=10) its 10 s: about 10 s here
    assert elapsed < 60, f"took {elapsed:.0f} s to report an unreachable scheduler"
    assert read_rows(tmp_path / "out" / "rows.csv") == []  # no run started
