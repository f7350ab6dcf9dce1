"""Sweeps and case corpora on a real Dask cluster: a scheduler and two worker processes on loopback.

The cluster is started here (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``
subprocesses bound to 127.0.0.1) and stopped here; the tests skip where Dask is absent.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from xor_script import xor_script

from netdoctor.cli import main

# The convergence of this tiny XOR net depends on its initial draw: a sweep of a few
# seeds has converged and unconverged runs. Its data come from a module beside it, so
# the run fails unless the script's folder travelled with the task.
FRAGILE = '''
import numpy as np
from xor_data import X, y

rng = np.random.default_rng(0)
W1 = rng.normal(0.0, 1.0, (2, 2)); b1 = np.zeros(2)
W2 = rng.normal(0.0, 1.0, (2, 1)); b2 = np.zeros(1)
for epoch in range(150):
    h = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    out = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
    d_out = (out - y) * out * (1 - out)
    d_h = (d_out @ W2.T) * h * (1 - h)
    W2 -= 4.0 * h.T @ d_out; b2 -= 4.0 * d_out.sum(0)
    W1 -= 4.0 * X.T @ d_h; b1 -= 4.0 * d_h.sum(0)
with open(__file__ + ".ran", "a") as mark:   # where the run really happened
    mark.write("x")
{tail}
'''
XOR_DATA = '''
import numpy as np
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([[0], [1], [1], [0]], dtype=float)
'''
START_TIMEOUT = 60.0


def fragile_folder(root: Path, tail: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "xor_data.py").write_text(textwrap.dedent(XOR_DATA))
    script = root / "train.py"
    script.write_text(textwrap.dedent(FRAGILE).format(tail=textwrap.dedent(tail)))
    return script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackCluster:
    """A Dask scheduler and worker processes on 127.0.0.1, each worker one thread, no nanny."""

    def __init__(self, folder: Path, workers: int = 2):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.env = dict(os.environ, OMP_NUM_THREADS="1")
        self.scheduler = self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                     "--port", str(port), "--no-dashboard", log="scheduler")
        self.workers: dict[str, subprocess.Popen] = {}
        try:
            for i in range(workers):
                self.add_worker(f"w{i}")
            self.wait_for(workers)
        except BaseException:  # a cluster that did not start leaves nothing running
            self.stop()
            raise

    def _start(self, module: str, *args: str, log: str) -> subprocess.Popen:
        with open(self.folder / f"{log}.log", "wb") as out:
            # Started in a folder of their own: the workers do not run in ours.
            return subprocess.Popen([sys.executable, "-m", module, *args], cwd=self.folder,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env)

    def add_worker(self, name: str) -> None:
        self.workers[name] = self._start(
            "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
            "--no-nanny", "--no-dashboard", "--name", name, "--local-directory", str(self.folder),
            log=name)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=START_TIMEOUT, set_as_default=False)

    def wait_for(self, n: int) -> None:
        with self.client() as client:  # connecting waits for the scheduler
            if n:
                client.wait_for_workers(n, timeout=START_TIMEOUT)

    def stop(self) -> None:
        """Workers first, then the scheduler; whatever has not ended after 3 s is killed."""
        for group in (list(self.workers.values()), [self.scheduler]):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    started = LoopbackCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def comparable(runs: list[dict]) -> list[tuple]:
    return [(r["seed"], r["status"], r["converged"], r["loss_start"], r["loss_end"], r["error_codes"])
            for r in runs]


# -- same answer as local ----------------------------------------------------------------
def test_a_sweep_on_the_cluster_gives_the_local_pool_s_answer(cluster, tmp_path, capsys):
    script = fragile_folder(tmp_path / "fragile")
    status, out, err = cli(capsys, "diagnose", script, "--seeds", 5, "--scheduler", cluster.address,
                           "--format", "json")
    remote = json.loads(out)
    assert not (tmp_path / "fragile" / "train.py.ran").exists(), "the runs must happen in a copy"
    assert [r["status"] for r in remote["runs"]] == ["completed"] * 5, err

    status_local, out_local, _ = cli(capsys, "diagnose", script, "--seeds", 5, "--format", "json")
    local = json.loads(out_local)
    assert (tmp_path / "fragile" / "train.py.ran").read_text() == "x" * 5
    assert comparable(remote["runs"]) == comparable(local["runs"])
    assert (remote["converged"], status) == (local["converged"], status_local)
    # The script is fragile: the comparison covers both outcomes.
    assert 0 < local["converged"] < 5, out_local


def test_diagnose_with_a_client_s_executor(cluster, tmp_path):
    import netdoctor
    from netdoctor.sweep import sweep

    script = fragile_folder(tmp_path / "fragile")
    with cluster.client() as client:
        remote = netdoctor.diagnose(str(script), seeds=2, base_seed=4, executor=client.get_executor())
    with futures.ProcessPoolExecutor(2) as pool:
        local = sweep(script, 2, base_seed=4, executor=pool)
    assert [run.seed for run in remote.runs] == [4, 5]
    assert remote.runs == local.runs


def test_the_detection_matrix_on_the_cluster_is_the_local_one(cluster, tmp_path, capsys):
    from test_cases_cmd import make_case

    root = tmp_path / "cases"
    bad, good = xor_script("1.0 / (1.0 + sigmoid(-z))"), xor_script("sigmoid(z)")
    crash = good + 'raise RuntimeError("after training")\n'  # a "healthy" script that is not
    make_case(root, "double_sigmoid", ["ND303"], bad, good, extra={"answer.py": crash})
    status, out, err = cli(capsys, "cases", root, "--format", "json", "--scheduler", cluster.address)
    status_local, out_local, _ = cli(capsys, "cases", root, "--format", "json", "-j", "2")
    remote, local = json.loads(out), json.loads(out_local)
    for data in (remote, local):
        for case in data["cases"]:
            case.pop("seconds")
    assert remote == local
    (case,) = remote["cases"]
    assert case["found"] == ["ND303"] and "fixed" not in case["errors_healthy"]
    # The crash's traceback names the script where it is here, not where it ran.
    assert str(root / "double_sigmoid" / "answer.py") in case["problems"]["answer.py"]
    assert status == status_local == 1


# -- faults ---------------------------------------------------------------------------------
def test_a_crashing_script_is_reported_as_crashed(cluster, tmp_path, capsys):
    script = fragile_folder(tmp_path / "crash", tail='raise RuntimeError("the script broke")\n')
    status, out, _ = cli(capsys, "diagnose", script, "--seeds", 2, "--scheduler", cluster.address,
                         "--format", "json")
    remote = json.loads(out)
    local = json.loads(cli(capsys, "diagnose", script, "--seeds", 2, "--format", "json")[1])
    assert [r["status"] for r in remote["runs"]] == ["crashed", "crashed"]
    assert comparable(remote["runs"]) == comparable(local["runs"])
    assert status == 1  # no run converged: it points at a bug


def test_the_timeout_applies_on_the_worker(cluster, tmp_path, capsys):
    script = fragile_folder(tmp_path / "hang", tail="import time\nwhile True:\n    time.sleep(0.05)\n")
    started = time.monotonic()
    status, out, err = cli(capsys, "diagnose", script, "--seeds", 2, "--timeout", 3,
                           "--scheduler", cluster.address, "--format", "json")
    assert time.monotonic() - started < 60, "the timeout must end the runs"
    runs = json.loads(out)["runs"]
    assert [r["status"] for r in runs] == ["timeout", "timeout"], err
    assert [r["converged"] for r in runs] == [False, False]


def test_a_worker_killed_mid_sweep_loses_no_seed(cluster, tmp_path):
    from netdoctor.sweep import sweep

    # Each run lasts a little longer, so that the victim is surely busy when it dies.
    script = fragile_folder(tmp_path / "slow", tail="import time\ntime.sleep(0.5)\n")
    with cluster.client() as client:
        names = {addr: info["name"] for addr, info in client.scheduler_info()["workers"].items()}
        victim, assigned = None, {}
        with futures.ThreadPoolExecutor(1) as runner:
            done = runner.submit(sweep, script, 6, executor=client.get_executor(pure=False))
            deadline = time.monotonic() + START_TIMEOUT
            while victim is None and time.monotonic() < deadline:
                assigned = {addr: keys for addr, keys in client.processing().items() if keys}
                if len(assigned) == 2:  # both are running a seed: kill one in the middle of it
                    time.sleep(0.3)
                    victim = names[next(iter(assigned))]
                time.sleep(0.05)
            assert victim is not None, "the two workers never ran at once"
            cluster.workers[victim].send_signal(signal.SIGKILL)
            cluster.workers[victim].wait(timeout=10)
            result = done.result(timeout=120)
    cluster.add_worker(victim + "-again")  # for the tests that follow
    cluster.wait_for(2)
    assert [run.seed for run in result.runs] == list(range(6))
    assert [run.status for run in result.runs] == ["completed"] * 6, result.render()
    assert result.n == 6 and result.determined == 6 and not result.notes


# -- bad input --------------------------------------------------------------------------------
def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    script = fragile_folder(tmp_path / "fragile")
    started = time.monotonic()
    status, out, err = cli(capsys, "diagnose", script, "--seeds", 2, "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 30, "never a hang"
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("netdoctor: ")
    status, _, err = cli(capsys, "cases", tmp_path, "--scheduler", "no-port-here")
    assert status == 2  # (no case here either: either problem is a usage error)


def test_an_unreachable_scheduler_for_cases(tmp_path, capsys):
    pytest.importorskip("distributed")
    from test_cases_cmd import make_case

    make_case(tmp_path / "cases", "c", ["ND101"], "x = 1\n", "x = 2\n")
    status, out, err = cli(capsys, "cases", tmp_path / "cases", "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "127.0.0.1" in err


def test_a_scheduler_without_workers_is_one_line_and_exit_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    empty = LoopbackCluster(tmp_path / "empty", workers=0)
    try:
        script = fragile_folder(tmp_path / "fragile")
        status, out, err = cli(capsys, "diagnose", script, "--seeds", 2, "--scheduler", empty.address)
    finally:
        empty.stop()
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no worker" in err


def test_without_dask_the_cli_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    script = fragile_folder(tmp_path / "fragile")
    status, _, err = cli(capsys, "diagnose", script, "--seeds", 2, "--scheduler", "tcp://127.0.0.1:8786")
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "netdoctor[dask]" in err


def test_scheduler_needs_seeds(tmp_path, capsys):
    script = fragile_folder(tmp_path / "fragile")
    status, _, err = cli(capsys, "diagnose", script, "--scheduler", "tcp://127.0.0.1:8786")
    assert status == 2 and "--seeds" in err


def test_a_folder_too_big_to_send_is_refused_before_anything_runs(tmp_path, monkeypatch):
    import netdoctor.portable
    from netdoctor.portable import BundleError, bundle_folder
    from netdoctor.sweep import sweep

    script = fragile_folder(tmp_path / "big")
    (tmp_path / "big" / "data.bin").write_bytes(b"\0" * 5000)
    assert {name for name, _ in bundle_folder(tmp_path / "big").files} == {"train.py", "xor_data.py", "data.bin"}
    monkeypatch.setattr(netdoctor.portable, "MAX_BUNDLE_BYTES", 4096)
    with pytest.raises(BundleError, match="MiB"):
        bundle_folder(tmp_path / "big")
    with futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(BundleError):
            sweep(script, 2, executor=pool, portable=True)
    assert not (tmp_path / "big" / "train.py.ran").exists()


def test_dask_is_imported_only_when_asked_for():
    code = ("import sys\n"
            "import netdoctor.sweep, netdoctor.portable, netdoctor.distributed, netdoctor.commands.cases\n"
            "from netdoctor.cli import main\n"
            "try:\n    main(['diagnose', '--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in ('dask', 'distributed') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--scheduler" in result.stdout


def test_a_case_too_big_to_send_is_reported_not_run(tmp_path, monkeypatch):
    import netdoctor.portable
    from test_cases_cmd import make_case

    from netdoctor.casefile import load_case
    from netdoctor.commands.cases import run_all

    make_case(tmp_path, "c", ["ND101"], "x = 1\n", "x = 2\n", failures={"ND203": "not seen yet"})
    monkeypatch.setattr(netdoctor.portable, "MAX_BUNDLE_BYTES", 10)
    with futures.ThreadPoolExecutor(1) as pool:
        (outcome,) = run_all([load_case(tmp_path / "c")], executor=pool, portable=True)
    assert outcome.missed == ["ND101"] and outcome.known_missed == ["ND203"]
    assert set(outcome.problems) == {"original", "fixed"} and "MiB" in outcome.problems["fixed"]
    assert not outcome.passed


def test_a_case_outcome_survives_its_trip_as_json(tmp_path, finding_factory):
    from test_cases_cmd import make_case

    from netdoctor.casefile import load_case
    from netdoctor.testing import outcome_from_dict, outcome_to_dict
    from netdoctor.testing import CaseOutcome

    make_case(tmp_path, "c", ["ND101"], "x = 1\n", "x = 2\n")
    spec = load_case(tmp_path / "c")
    outcome = CaseOutcome(spec, found=["ND101"], original_errors=[finding_factory("ND303", "activation-mismatch", "error")],
                          unhealthy={"fixed": [finding_factory("ND402", "same-sign-init", "error", run="fixed")]},
                          problems={"fixed": "crashed"}, seconds=1.5)
    again = outcome_from_dict(spec, json.loads(json.dumps(outcome_to_dict(outcome))))
    assert again.to_dict() == outcome.to_dict()
    assert [f.code for f in again.unhealthy["fixed"]] == ["ND402"] and again.original_errors[0].is_error
