"""The child process that runs one user script under an Observer.

Started by :func:`netdoctor.observe.script.run_script` as
``python -m netdoctor.observe.child SPEC`` (SPEC: a pickled dict the parent wrote).
A process per run keeps runs apart (two scripts compared never share module
state) and keeps netdoctor alive whatever the script does.

What the script sees, as close to ``python script.py`` as we can make it:

* ``__name__ == "__main__"``; ``__file__`` is the script's absolute path (as Python
  3.9+ sets it); ``sys.argv`` is ``[path as given, *arguments after --]``.
* ``sys.path[0]`` is the script's folder, so its neighbours import.
* The working directory is the one netdoctor was started in, exactly as with
  ``python path/to/script.py``; relative paths in the script mean the same thing.
* Standard input is empty, so nothing can wait for a keyboard: ``input()`` raises
  an ``EOFError`` whose message names the problem and the way out (pass the value
  after ``--`` and read ``sys.argv``).
* ``MPLBACKEND=Agg`` (set by the parent): ``plt.show()`` opens no window and returns.
* ``sys.exit()``, ``exit()``, ``quit()`` and ``os._exit()`` end the script, not the
  report; a non-zero exit status is noted in the report.

The result, ``{"trace": Trace}`` or ``{"internal_error": text}``, is pickled to
``spec["result"]`` atomically, so the parent never reads half a file.
"""

from __future__ import annotations

import atexit
import builtins
import importlib
import importlib.machinery
import importlib.util
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any

from .progress import ProgressSender

NETDOCTOR_DIR = str(Path(__file__).resolve().parent.parent)

# Folders never searched for the user's own modules (they hold installed code).
_NOT_USER_DIRS = {"site-packages", "dist-packages", "node_modules", "__pycache__"}
_MAX_USER_FILES = 2000


def user_files(script: Path) -> list[str]:
    """The script plus the Python files it may import from its own folder.

    Its folder's ``*.py`` files and the packages (folders with ``__init__.py``)
    below it: the observer treats code in these files as the user's. Hidden
    folders and installed-package folders are skipped; the walk is capped so a
    script at the top of a home directory does not cost a full scan.
    """
    files = [str(script)]
    folder = script.parent

    def walk(directory: Path) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        for entry in entries:
            if len(files) >= _MAX_USER_FILES:
                return
            if entry.name.startswith(".") or entry.name in _NOT_USER_DIRS:
                continue
            if entry.suffix == ".py" and entry.is_file():
                if entry != script:
                    files.append(str(entry))
            elif entry.is_dir() and (entry / "__init__.py").is_file():
                walk(entry)

    walk(folder)
    return files


def user_traceback(exc: BaseException) -> str:
    """The traceback of `exc` as Python would print it, without netdoctor's own frames.

    Hidden: the leading frames (the runner that called the script) and a trailing
    frame of this module (our stand-in for ``input()``). Any other netdoctor frame
    below the user's code would be a netdoctor bug, and stays visible.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(NETDOCTOR_DIR):
        tb = tb.tb_next
    frames = traceback.extract_tb(tb)
    while frames and frames[-1].filename == __file__:
        frames.pop()
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def raised_by_netdoctor(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc` is netdoctor's (a bug of ours, not the script's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(NETDOCTOR_DIR) and frames[-1].filename != __file__


class NoInputError(EOFError):
    """input() was called; the script runs without a keyboard."""


def _no_input(prompt: Any = "") -> str:
    if prompt:
        sys.stdout.write(str(prompt))
        sys.stdout.flush()
    raise NoInputError(
        "input() has nothing to read: netdoctor runs the script with an empty standard "
        "input so that it can never wait for a keyboard. Pass the value after `--` "
        "(netdoctor diagnose script.py -- VALUE) and read it from sys.argv."
    )


def load_observer(spec: str):
    """(module, Observer class) from "package.module:Class" or "/path/file.py:Class".

    The module must also define ``StopRun``, the exception the observer raises to end
    a run early; the runner raises the same class for a timeout.
    """
    where, _, cls_name = spec.rpartition(":")
    if not where:
        raise ValueError(f"observer {spec!r} is not of the form module:Class")
    if where.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location("_netdoctor_observer", where)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load observer module {where}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return module, getattr(module, cls_name)


class _Deadline:
    """The soft timeout, in two stages, on the main thread's SIGALRM.

    1. At `timeout`, raise StopRun("timeout") into the user's code: the run ends
       the ordinary way and the trace so far is kept.
    2. If the script swallowed that (``except BaseException: pass`` in a loop), end
       the run from inside the handler at `timeout + grace/2`.
    The parent kills the process at `timeout + grace`, for code stuck outside Python.
    """

    def __init__(self, run: "ScriptRun", timeout: float | None, grace: float):
        self.run = run
        self.timeout = timeout
        self.grace = grace
        self.fired = False

    def arm(self) -> None:
        if self.timeout is None or not hasattr(signal, "setitimer"):
            return
        signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, max(float(self.timeout), 1e-3))

    def disarm(self) -> None:
        if self.timeout is not None and hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _fire(self, signum, frame) -> None:
        if not self.run.in_user_code:
            return  # the script already ended; our own code must not be interrupted
        if not self.fired:
            self.fired = True
            signal.setitimer(signal.ITIMER_REAL, max(self.grace / 2, 0.05))
            raise self.run.StopRun("timeout")
        self.run.conclude_now(
            "timeout", "timeout",
            note="the script caught netdoctor's stop at the timeout and went on; it was ended anyway",
        )


class ScriptRun:
    """One script run under one observer, from start to the written result."""

    def __init__(self, spec: dict[str, Any], observer_module: Any, observer_class: type,
                 sender: ProgressSender):
        self.spec = spec
        self.script = Path(spec["script"])
        self.StopRun = observer_module.StopRun
        self.observer_class = observer_class
        self.sender = sender
        self.observer: Any = None
        self.in_user_code = False
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {}
        self.thread_stop: str | None = None
        self._concluded = threading.Lock()
        self._pid = os.getpid()
        self._real_exit = os._exit
        self.deadline = _Deadline(self, spec.get("timeout"), float(spec.get("grace") or 5.0))

    # -- setting the stage -------------------------------------------------------
    def _prepare_process(self) -> dict[str, Any]:
        spec = self.spec
        sys.argv = [spec["argv0"], *spec.get("args", ())]
        # `python -m` put our working directory first; `python script.py` puts the script's folder.
        script_dir = str(self.script.parent)
        if sys.path and sys.path[0] in ("", os.getcwd()):
            sys.path[0] = script_dir
        else:
            sys.path.insert(0, script_dir)
        # netdoctor must stay importable (its modules load lazily) even if it only
        # came from the working directory we just removed.
        netdoctor_root = str(Path(NETDOCTOR_DIR).parent)
        if netdoctor_root not in sys.path:
            sys.path.append(netdoctor_root)
        if spec.get("line_buffered"):
            # Output passes through the parent's display: deliver it line by line, as a terminal would.
            sys.stdout.reconfigure(line_buffering=True)
        builtins.input = self._input
        os._exit = self._os_exit
        threading.excepthook = self._thread_excepthook
        if spec.get("seed") is not None:
            # Run `seed` of a seed sweep: the sweep module defines what that means
            # (including for scripts that fix their own seed).
            from ..seeding import install_seed

            install_seed(int(spec["seed"]))
        else:
            # NETDOCTOR_SEED=k runs the script as run k of a sweep would (checked by the CLI).
            from ..seeding import seed_from_environment

            seed_from_environment()

        module = types.ModuleType("__main__")
        module.__dict__.update(
            __file__=str(self.script),
            __builtins__=builtins,
            __cached__=None,
            __spec__=None,
            __loader__=importlib.machinery.SourceFileLoader("__main__", str(self.script)),
        )
        sys.modules["__main__"] = module
        return module.__dict__

    def _input(self, prompt: Any = "") -> str:
        self.notes.append("the script called input(); netdoctor gives scripts no standard input")
        return _no_input(prompt)

    def _os_exit(self, code: int = 0) -> None:
        # Only this process, not one forked by the script (multiprocessing), writes the report.
        if os.getpid() == self._pid:
            note = None if code == 0 else f"the script called os._exit({code})"
            self.extra["exit_code"] = code
            self.conclude_now("completed", None, note=note)
        self._real_exit(code)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, self.StopRun):
            # The observer stopped a run that trains in a thread; the thread just ends.
            self.thread_stop = getattr(args.exc_value, "reason", str(args.exc_value))
            return
        name = getattr(args.thread, "name", "?")
        self.notes.append(
            f"an exception ended thread {name!r}: {args.exc_type.__name__}: {args.exc_value} "
            "(its traceback is in the script's error output)"
        )
        threading.__excepthook__(args)

    # -- running ---------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        spec = self.spec
        globals_ = self._prepare_process()
        self.observer = self.observer_class(
            name=spec["name"],
            thresholds=spec["thresholds"],
            user_files=user_files(self.script),
            module_globals=globals_,
            max_steps=spec.get("max_steps"),
            stop_on=spec.get("stop_on"),
            on_progress=self.sender,
            roles=spec.get("roles") or None,
        )
        status, error, reason = "completed", None, None
        try:
            code = compile(self.script.read_bytes(), str(self.script), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # the file changed since the parent checked it
            return self._conclude("crashed", None, user_traceback(exc))
        # An observer that fails to install is netdoctor's failure, not the script's:
        # it propagates to main() and is reported as an internal error.
        self.observer.install()
        self._install_frameworks(globals_)
        try:
            try:
                self.deadline.arm()
                self.in_user_code = True
                exec(code, globals_)
                self._wait_for_threads()
            finally:
                self.in_user_code = False
                self.deadline.disarm()
                # From here on the run is ours to summarise; a late Ctrl-C must not lose it.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        except self.StopRun as stop:
            reason = getattr(stop, "reason", None) or str(stop)
            status = "timeout" if reason == "timeout" else "stopped"
        except SystemExit as stop:
            self._note_exit_code(stop.code)
        except KeyboardInterrupt:
            status, reason = "stopped", "interrupted"
        except BaseException as exc:  # noqa: BLE001 - whatever the script raised is its crash
            status, error = "crashed", user_traceback(exc)
            if raised_by_netdoctor(exc):
                self.notes.append(
                    "the error above was raised inside netdoctor while it observed the script: "
                    "a netdoctor bug, not yours; please report it with the traceback"
                )
        finally:
            self.observer.uninstall()
            self.frameworks.uninstall()
        if status == "completed" and self.thread_stop:
            reason = self.thread_stop
            status = "timeout" if reason == "timeout" else "stopped"
        # Whoever concludes first writes the report; a thread calling os._exit now waits
        # here for ever, i.e. until this process exits.
        self._concluded.acquire()
        return self._conclude(status, reason, error)

    def _wait_for_threads(self) -> None:
        # Python waits for non-daemon threads before a script ends; so do we, so a
        # script that trains in a thread and does not join it is still observed.
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()

    def _note_exit_code(self, code: Any) -> None:
        if code is None or code == 0:
            return
        self.extra["exit_code"] = code if isinstance(code, int) else 1
        self.notes.append(f"the script called sys.exit({code!r})")

    # -- concluding ---------------------------------------------------------------------
    def _stop_text(self, reason: str | None, steps: int) -> str | None:
        if reason is None:
            return None
        spec = self.spec
        texts = {
            "timeout": f"timeout of {float(spec.get('timeout') or 0):g} s reached after {steps} steps",
            "max-steps": f"stopped at the step limit ({spec.get('max_steps')}) after {steps} steps",
            "stop-on": f"stopped after {steps} steps: a finding at or above "
            f"'{spec.get('stop_on')}' was already certain",
            "interrupted": f"interrupted (Ctrl-C) after {steps} steps",
        }
        return texts.get(reason, f"{reason} after {steps} steps")

    def _steps(self) -> int:
        try:
            return max(int(self.observer.steps), self.frameworks.steps if self.frameworks else 0)
        except Exception:  # noqa: BLE001 - a count is nice to have, never worth a crash
            return 0

    # -- framework hook point (torch, keras): everything else lives in netdoctor.frameworks ---------
    frameworks = None

    def _install_frameworks(self, globals_: dict[str, Any]) -> None:
        """Watchers that install themselves only if the script imports torch or keras."""
        from ..frameworks.lazy import FrameworkHooks

        spec = self.spec
        self.frameworks = FrameworkHooks(
            spec["name"], spec["thresholds"], user_files(self.script), globals_,
            max_steps=spec.get("max_steps"), stop=self.StopRun,
            # once a framework trains, the NumPy observer's profile hook is only overhead
            on_first_step=self.observer.uninstall,
        )
        self.frameworks.install()

    def _framework_trace(self, status: str, error: str | None, stop_text: str | None):
        return None if self.frameworks is None else self.frameworks.finish(status, error, stop_text)
    # -- end of the framework hook point ------------------------------------------------------------

    def _conclude(self, status: str, reason: str | None, error: str | None,
                  note: str | None = None) -> dict[str, Any]:
        steps = self._steps()
        stop_text = self._stop_text(reason, steps)
        try:
            trace = (self._framework_trace(status, error, stop_text)
                     or self.observer.finish(status, error=error, stop_reason=stop_text))
        except Exception:  # noqa: BLE001 - the run still gets a report
            trace = _bare_trace(self.spec["name"], status, steps)
            self.notes.append(
                "netdoctor's observer failed while summarising this run, so the report shows "
                "only how the run ended:\n" + traceback.format_exc(limit=-3)
            )
        info = trace.info
        info.status, info.error, info.stop_reason = status, error, stop_text
        info.script = str(self.script)
        if info.source == "reference":
            info.source = "script"
        if note:
            self.notes.append(note)
        info.notes.extend(n for n in self.notes if n not in info.notes)
        info.extra.update(self.extra)
        if reason and not trace.events_of("stopped"):
            trace.add_event("stopped", {"reason": reason, "step": steps}, step=steps)
        return {"trace": trace}

    def conclude_now(self, status: str, reason: str | None, note: str | None = None) -> None:
        """End the run from wherever we are (a signal handler, os._exit): report, then exit."""
        # Blocks for ever if another thread is already concluding: it will end the process.
        self._concluded.acquire()
        self.in_user_code = False
        self.deadline.disarm()
        if self.observer is None:
            self._real_exit(3)
        try:
            self.observer.uninstall()
        except Exception:  # noqa: BLE001
            pass
        write_result(self.spec["result"], self._conclude(status, reason, None, note))
        _flush_std()
        self._real_exit(0)


def _bare_trace(name: str, status: str, steps: int):
    from ..trace import Trace
    from ..types import RunInfo

    return Trace(RunInfo(name=name, status=status, steps=steps, source="script"))


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not lose the report
            pass


def write_result(path: str, payload: dict[str, Any]) -> None:
    """Pickle `payload` to `path` atomically; strip what will not pickle rather than lose the run."""
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - e.g. a user object kept in an event by mistake
        data = pickle.dumps(_portable(payload), protocol=pickle.HIGHEST_PROTOCOL)
    tmp = f"{path}.part"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _portable(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with every value the parent could not unpickle replaced by its repr."""

    def plain(value: Any) -> Any:
        try:
            pickle.dumps(value)
            return value
        except Exception:  # noqa: BLE001
            return repr(value)[:300]

    trace = payload.get("trace")
    if trace is not None:
        for event in trace.events:
            event.data = {key: plain(value) for key, value in event.data.items()}
        trace.info.extra = {key: plain(value) for key, value in trace.info.extra.items()}
        trace.info.notes.append("some measured values could not be passed back and were replaced by text")
    return payload


def _exit_with_parent(interval: float = 0.25) -> None:
    """End this process soon after the parent dies.

    The child runs in a session of its own (so that it can be killed as a group),
    so a closed terminal or a killed netdoctor would otherwise leave the script
    running for ever. A daemon thread started before the observer is installed,
    so it is never observed.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="netdoctor-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _exit_with_parent()
    with open(argv[0], "rb") as handle:
        spec = pickle.load(handle)
    fd = spec.get("progress_fd")
    if fd is not None:
        os.set_inheritable(fd, False)  # the script's own subprocesses do not get our pipe
    try:
        module, observer_class = load_observer(spec["observer"])
        run = ScriptRun(spec, module, observer_class, ProgressSender(fd))
    except Exception:  # noqa: BLE001 - reported to the parent as netdoctor's own failure
        write_result(spec["result"], {"internal_error": traceback.format_exc()})
        return 3
    try:
        payload = run.execute()
    except Exception:  # noqa: BLE001
        payload = {"internal_error": traceback.format_exc()}
    write_result(spec["result"], payload)
    _flush_std()
    os._exit = run._real_exit  # the report is written; exits from now on are plain exits
    if payload.get("trace") is not None and payload["trace"].info.status == "completed":
        # A script that ended normally gets its exit handlers, as under `python`.
        atexit._run_exitfuncs()
        _flush_std()
    # os._exit: threads a stopped script left running must not keep the process alive.
    run._real_exit(0)
    return 0  # pragma: no cover


if __name__ == "__main__":
    # Run the code from the properly named module (not this `__main__` copy), so that
    # nothing of ours is left under the name `__main__`, which the script takes over.
    from netdoctor.observe.child import main as _main

    sys.exit(_main())
