"""Seed sweeps and case corpora on a Dask cluster.

    netdoctor diagnose train.py --seeds 40 --scheduler tcp://10.0.0.5:8786
    netdoctor cases case_studies --scheduler tcp://10.0.0.5:8786

and from Python, with a client of your own::

    from distributed import Client
    from netdoctor.commands.cases import run_all

    client = Client("tcp://10.0.0.5:8786")
    netdoctor.diagnose("train.py", seeds=40, executor=client.get_executor())
    run_all(specs, executor=client.get_executor())

Each task carries the script's folder and answers in JSON
(:mod:`netdoctor.portable`): the workers need netdoctor (the same version) and
whatever the scripts import, not our filesystem. Dask is an optional extra
(``pip install 'netdoctor[dask]'``) imported only here, and only when asked for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as futures
import logging
import socket
from contextlib import contextmanager
from typing import Iterator

INSTALL_HINT = "pip install 'netdoctor[dask]'"
CONNECT_TIMEOUT = 5.0      # seconds to reach the scheduler, and again for a first worker


class ClusterError(Exception):
    """The cluster cannot be used (Dask missing, scheduler unreachable, no worker); one line."""


def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--scheduler needs Dask distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await asyncio.wait_for(comm.read(), timeout)
    except Exception:  # noqa: BLE001 - something answered, in another protocol
        return None
    finally:
        comm.abort()


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """ClusterError unless a Dask scheduler answers at `address` within `timeout` seconds.

    Asked before a Client is made: a Client that fails to start lingers and waits
    for its own shutdown, which would turn one clear error into a long pause.
    """
    _require_distributed()
    _check_listening(address, timeout)
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout + 1.0))
    except (asyncio.TimeoutError, TimeoutError):
        raise ClusterError(f"no Dask scheduler answered at {address} within {timeout:g} s") from None
    except Exception as exc:  # noqa: BLE001 - the port is open: another service, or TLS expected
        raise ClusterError(f"{address} answers, but not as a Dask scheduler ({_first_line(exc)})") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise ClusterError(f"{address} answered, but not as a Dask scheduler")


def _check_listening(address: str, timeout: float) -> None:
    """A refused TCP connection is told at once (Dask itself would retry until its timeout)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "tcp":
            return  # other transports: left to Dask
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise ClusterError(f"{address} is not a scheduler address like tcp://HOST:8786 ({exc})") from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        raise ClusterError(f"no Dask scheduler at {address}: nothing listens on port {port} of {host}") from None
    except socket.timeout:
        raise ClusterError(f"no Dask scheduler answered at {address} within {timeout:g} s") from None
    except OSError as exc:
        raise ClusterError(f"cannot reach a Dask scheduler at {address}: {exc.strerror or exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def cluster_executor(address: str, timeout: float = CONNECT_TIMEOUT) -> Iterator[futures.Executor]:
    """An executor over the Dask cluster at `address`, closed on leaving the block.

    ClusterError, within about 2 x `timeout` seconds, when Dask is not installed,
    nothing answers at `address`, or the cluster has no worker.
    """
    distributed = _require_distributed()
    check_scheduler(address, timeout)
    # The client's own log lines (lost connections while a worker dies, retries) are
    # not ours to show: what matters reaches the caller through the tasks' results.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {_first_line(exc)}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise ClusterError(f"the Dask scheduler at {address} has no worker (start one: "
                               f"dask worker {address})") from None
        # pure=False: two runs of one script with one seed are still two runs.
        yield client.get_executor(pure=False)
    finally:
        client.close(timeout=timeout)
