"""Run a user's training script, unmodified, under observation: :func:`run_script`.

Each run happens in a child process (:mod:`.child`), so that

* two scripts compared (``--compare``) never share module state,
* a script stuck in C code can still be killed, and ``os._exit`` or a segfault
  in the script cannot take netdoctor down,
* the script's output reaches the terminal without passing through our memory.

The parent (this module) checks the file, starts the child, shows progress, keeps
time and reads the child's pickled Trace. What the script sees (``__main__``,
``sys.argv``, ``sys.path``, the working directory, an empty stdin, a window-less
matplotlib) is described in :mod:`.child`.

Time limits: at ``timeout`` the child raises ``StopRun("timeout")`` into the script
and reports what it saw; at ``timeout + grace`` the parent kills the process (and
anything it started) and builds the report from the progress messages it received.
"""

from __future__ import annotations

import ast
import codecs
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, TextIO

from ..config import Thresholds
from ..trace import Recorder, Trace, MODEL
from ..types import RunInfo, Severity
from .progress import LiveDisplay, ProgressLog, decode

DEFAULT_OBSERVER = "netdoctor.observe.objects:Observer"
# Another observer ("package.module:Class" or "/path/to/file.py:Class") for tests
# and experiments; its module must define StopRun like netdoctor.observe.objects.
OBSERVER_ENV = "NETDOCTOR_OBSERVER"
PYTHON_SUFFIXES = {".py", ".pyw"}


class ScriptError(Exception):
    """The file cannot be run as a script (missing, a folder, empty, not Python...).

    The message is one line meant for the user, e.g. ``no such file: trian.py``.
    """


class RunnerError(Exception):
    """netdoctor itself failed to run the script (an internal error, not the script's)."""


# --- checking the file before anything runs --------------------------------------------


def check_script(path: str | os.PathLike) -> Path:
    """The script's absolute path, or ScriptError saying in one line why it cannot run."""
    given = os.fspath(path)
    script = Path(given)
    if not script.exists():
        raise ScriptError(f"no such file: {given}")
    if script.is_dir():
        raise ScriptError(f"{given} is a folder; give the Python file that trains your network")
    if script.suffix.lower() == ".ipynb":
        raise ScriptError(
            f"{given} is a notebook; call netdoctor.diagnose(...) inside it, or export it "
            "to a .py script first"
        )
    try:
        source = script.read_bytes()
    except OSError as exc:
        raise ScriptError(f"cannot read {given}: {exc.strerror or exc}") from None
    is_python_name = script.suffix.lower() in PYTHON_SUFFIXES
    if not source.strip():
        raise ScriptError(f"{given} is empty: there is nothing to run")
    if b"\0" in source:
        raise ScriptError(f"{given} is not a Python script (it holds binary data)")
    try:
        tree = ast.parse(source, filename=given)
    except (SyntaxError, ValueError) as exc:
        where = f"line {exc.lineno}: " if getattr(exc, "lineno", None) else ""
        what = getattr(exc, "msg", None) or str(exc)
        if is_python_name:
            raise ScriptError(f"syntax error in {given}, {where}{what}") from None
        raise ScriptError(f"{given} is not a Python script ({where}{what})") from None
    if not tree.body:
        raise ScriptError(f"{given} has no code to run (only comments)")
    return script.resolve()


# --- running ---------------------------------------------------------------------------


def run_script(
    path: str | os.PathLike,
    *,
    name: str = "original",
    args: Iterable[str] = (),
    timeout: float | None = None,
    max_steps: int | None = None,
    stop_on: Severity | str | None = None,
    quiet: bool = True,
    thresholds: Thresholds | None = None,
    json_stdout: bool = False,
    seed: int | None = None,
    grace: float | None = None,
    observer: str | None = None,
    roles: dict[str, Any] | None = None,
    **ignored: Any,
) -> Trace:
    """Run the file at `path` as ``__main__`` under an Observer and return its Trace.

    ``args`` become ``sys.argv[1:]``; the working directory stays the caller's.
    ``timeout`` (seconds) ends the run with status "timeout", ``max_steps`` and
    ``stop_on`` (a severity) with status "stopped"; the trace keeps what was seen.
    A script that raises gives status "crashed" and its traceback in
    ``trace.info.error``. ``quiet=False`` shows a progress bar when stderr is a
    terminal. ``json_stdout`` sends the script's own standard output to stderr, so
    that ours carries only the report. ``seed`` seeds the script's random generators
    as run `seed` of a seed sweep (see :func:`netdoctor.seeding.install_seed`). ``grace`` is how long after the
    timeout a script that does not stop is killed (default 5 s + 10 % of the timeout).
    ``roles`` names what the observer could not infer: ``{"params": ["W1", "b1"],
    "output": "A2", "targets": "y"}`` (``netdoctor diagnose --params/--net-output/--targets``).

    Raises ScriptError when the file cannot be run at all, RunnerError when netdoctor
    itself fails.
    """
    script = check_script(path)
    if timeout is not None and timeout <= 0:
        raise ScriptError("--timeout must be a positive number of seconds")
    if max_steps is not None and max_steps < 1:
        raise ScriptError("--max-steps must be at least 1")
    grace = (5.0 + 0.1 * timeout if timeout else 5.0) if grace is None else float(grace)
    spec = {
        "script": str(script),
        "argv0": os.fspath(path),
        "args": [str(a) for a in args],
        "name": name,
        "thresholds": thresholds or Thresholds(),
        "timeout": timeout,
        "grace": grace,
        "max_steps": max_steps,
        "stop_on": None if stop_on is None else Severity.parse(stop_on),
        "seed": seed,
        "roles": _checked_roles(roles),
        "observer": observer or os.environ.get(OBSERVER_ENV) or DEFAULT_OBSERVER,
    }
    with tempfile.TemporaryDirectory(prefix="netdoctor-") as tmp:
        supervisor = _Supervisor(spec, Path(tmp), quiet=quiet, json_stdout=json_stdout)
        return supervisor.run()


def _checked_roles(roles: dict[str, Any] | None) -> dict[str, Any]:
    """Roles as plain names (they travel to the child process): params a list, the rest one name."""
    out: dict[str, Any] = {}
    for key, value in (roles or {}).items():
        if value in (None, "", []):
            continue
        if key == "params":
            names = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(n, str) and n for n in names):
                raise ScriptError("params are named by the names your code uses, e.g. W1,b1,W2,b2")
            out[key] = names
        elif key in ("output", "targets"):
            if not isinstance(value, str):
                raise ScriptError(f"{key} is named by the name your code uses, e.g. A2")
            out[key] = value
        else:
            raise ScriptError(f"unknown role {key!r}: name params, output or targets")
    return out


def _fd_of(stream: TextIO) -> int | None:
    """The file descriptor behind a stream, or None (a notebook's or a test's stand-in)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Supervisor:
    """Starts the child, relays its output and progress, keeps time, collects the Trace."""

    def __init__(self, spec: dict[str, Any], tmp: Path, *, quiet: bool, json_stdout: bool):
        self.spec = spec
        self.tmp = tmp
        self.result_path = tmp / "result.pkl"
        spec["result"] = str(self.result_path)
        self.log = ProgressLog()
        self.out_stream = sys.stderr if json_stdout else sys.stdout
        self.err_stream = sys.stderr
        live = not quiet and _is_terminal(sys.stderr)
        self.display = LiveDisplay(spec["name"], enabled=live, stream=sys.stderr,
                                   total=spec["max_steps"])
        # The child writes straight to our stdout/stderr (no copy, no slowdown), except
        # when a progress bar must be kept clear of its lines, or when our streams are
        # stand-ins without a file descriptor: then its output passes through us.
        self.relay_out = live or _fd_of(self.out_stream) is None
        self.relay_err = live or _fd_of(self.err_stream) is None
        self.killed = False
        self.interrupted = False
        self._threads: list[threading.Thread] = []
        self._group_alive = True  # False once the child is reaped: its group id is no longer ours

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MPLBACKEND"] = "Agg"  # plt.show() must not open a window or wait for one
        env.pop(OBSERVER_ENV, None)  # the spec already says which observer
        return env

    def _start(self) -> subprocess.Popen:
        progress_read, progress_write = os.pipe()
        self.spec["progress_fd"] = progress_write
        self.spec["line_buffered"] = self.relay_out
        spec_path = self.tmp / "spec.pkl"
        spec_path.write_bytes(pickle.dumps(self.spec))
        stdout = subprocess.PIPE if self.relay_out else _fd_of(self.out_stream)
        stderr = subprocess.PIPE if self.relay_err else _fd_of(self.err_stream)
        for stream in (sys.stdout, sys.stderr):  # our own buffered text goes out first
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "netdoctor.observe.child", str(spec_path)],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                pass_fds=(progress_write,), env=self._env(),
                # Its own session: we can kill everything the script started, and a
                # Ctrl-C reaches us first (we then stop the script politely).
                start_new_session=True,
            )
        except BaseException:
            os.close(progress_read)
            raise
        finally:
            os.close(progress_write)
        self._spawn(self._read_progress, progress_read)
        if self.relay_out:
            self._spawn(self._relay, proc.stdout, self.out_stream)
        if self.relay_err:
            self._spawn(self._relay, proc.stderr, self.err_stream)
        return proc

    def _spawn(self, target, *args) -> None:
        # Daemon threads: a grandchild holding a pipe open must not keep us waiting.
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_progress(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as pipe:
            for line in pipe:
                message = decode(line)
                if message is not None:
                    self.log.add(message)
                    self.display.update(message)

    def _relay(self, pipe, stream: TextIO) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with pipe:
            while True:
                chunk = pipe.read1(65536)
                if not chunk:
                    break
                self.display.write_output(decoder.decode(chunk), stream)
            tail = decoder.decode(b"", final=True)
            if tail:
                self.display.write_output(tail, stream)

    def _signal_group(self, proc: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _watch_exit(self, proc: subprocess.Popen, ended: threading.Event) -> None:
        # Wait for the child's end without reaping it: while it is an unreaped zombie
        # its process-group id cannot be reused, so signalling the group afterwards can
        # only reach processes the script started.
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except (ChildProcessError, OSError, AttributeError):
            proc.wait()  # no waitid here: reap, and skip cleaning up the group
            self._group_alive = False
        ended.set()

    def _wait(self, proc: subprocess.Popen) -> None:
        """Until the child ends; kill it at timeout + grace; a Ctrl-C stops the script politely."""
        ended = threading.Event()
        self._spawn(self._watch_exit, proc, ended)
        timeout = self.spec["timeout"]
        deadline = None if timeout is None else time.monotonic() + timeout + self.spec["grace"]
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                if ended.wait(timeout=remaining):
                    return
                self.killed = True
                self._signal_group(proc, signal.SIGKILL)
                deadline = None  # a killed process ends at once; wait for it plainly
            except KeyboardInterrupt:
                if self.interrupted:  # a second Ctrl-C: stop waiting for it
                    self.killed = True
                    self._signal_group(proc, signal.SIGKILL)
                    deadline = None
                else:  # the first: the script gets a KeyboardInterrupt and we report
                    self.interrupted = True
                    self._signal_group(proc, signal.SIGINT)
                    grace_end = time.monotonic() + self.spec["grace"]
                    deadline = grace_end if deadline is None else min(deadline, grace_end)

    def run(self) -> Trace:
        proc = self._start()
        try:
            self._wait(proc)
        finally:
            # The script has ended (or we are leaving for another reason): processes it
            # started and left running share its process group and go with it, rather
            # than outlive netdoctor. The child is not reaped yet (see _watch_exit).
            if self._group_alive:
                self._signal_group(proc, signal.SIGKILL)
            proc.wait()
            for thread in self._threads:
                thread.join(timeout=2.0)
            self.display.close()
        return self._collect(proc.returncode)

    # -- the result ----------------------------------------------------------------
    def _collect(self, returncode: int) -> Trace:
        payload = None
        if self.result_path.exists():
            try:
                payload = pickle.loads(self.result_path.read_bytes())
            except Exception as exc:  # noqa: BLE001 - reported below, with what we have
                return self._fallback("crashed", f"netdoctor could not read the run's record ({exc})")
        if payload is None:
            return self._fallback_for(returncode)
        if "internal_error" in payload:
            raise RunnerError(payload["internal_error"])
        return payload["trace"]

    def _fallback_for(self, returncode: int) -> Trace:
        """The child ended without writing its record: build one from its progress messages."""
        steps = self.log.steps
        if self.killed and self.interrupted:
            return self._fallback("stopped", None, f"interrupted (Ctrl-C) after {steps} steps",
                                  "the script did not stop at Ctrl-C and was killed")
        if self.killed:
            limit = self.spec["timeout"]
            return self._fallback(
                "timeout", None, f"timeout of {limit:g} s reached after {steps} steps",
                f"the script did not stop at the {limit:g} s timeout (stuck outside Python code, "
                f"or ignoring netdoctor's signal) and was killed {self.spec['grace']:g} s later; "
                "this report has only the steps and losses it had sent",
            )
        if returncode is not None and returncode < 0:
            try:
                what = signal.Signals(-returncode).name
            except ValueError:
                what = f"signal {-returncode}"
            message = f"the script's process was killed by {what}"
        else:
            message = f"the script's process ended abruptly (exit status {returncode})"
        return self._fallback("crashed", message + f" after {steps} steps; netdoctor kept only its progress")

    def _fallback(self, status: str, error: str | None, stop_reason: str | None = None,
                  note: str | None = None) -> Trace:
        info = RunInfo(
            name=self.spec["name"], status=status, steps=self.log.steps, source="script",
            script=self.spec["script"], error=error, stop_reason=stop_reason,
        )
        if note:
            info.notes.append(note)
        recorder = Recorder()
        for step, loss in self.log.losses:
            recorder.record(step, {(MODEL, "loss"): loss})
        trace = Trace(info, recorder)
        if stop_reason:
            trace.add_event("stopped", {"reason": status, "step": self.log.steps}, step=self.log.steps)
        return trace
