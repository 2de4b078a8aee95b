"""Where the pure computations of a job run: in this process, on worker processes of this
machine, or on a Dask cluster.

    with executor(jobs=None, scheduler=None) as ex:
        results = ex.map(fn, tasks)                     # one result per task, in the order of the tasks
        for i, result in ex.imap_unordered(fn, tasks):  # (index, result) of each task as soon as it is done

Which executor (``ex.kind``):

- ``"serial"``: ``jobs=1``, or a machine with one core. A plain loop in this process, with the
  threads the process has (LightGBM's own ``num_threads``).
- ``"local"``: ``jobs=N`` > 1 (default: one per core). A ``distributed.LocalCluster`` of N worker
  processes, one thread each, listening on 127.0.0.1 only (its dashboard too, on a free port);
  started at the first ``map`` of two tasks or more, with at most one worker per task, and
  closed with the block. A single task, or light ones (``light=True``: seconds each), run in
  this process.
- ``"remote"``: ``scheduler="tcp://host:8786"``, or ``DASK_SCHEDULER_ADDRESS`` when neither
  ``jobs`` nor ``scheduler`` is given. Connected at once, within ``CONNECT_TIMEOUT`` seconds,
  with at least one worker and the same foedus code and libraries as this process; otherwise
  a one-line ``FoedusError`` before any work.

On a worker every task runs with one thread for BLAS, OpenMP and LightGBM: workers x 1 thread
is the cores, and several workers on one machine do not fight over them. Results do not depend
on it (LightGBM is fitted ``deterministic``; tests compare serial and two-worker backtests to
the last digit).

``fn`` must be a module-level function of an installed package (Dask sends it by name) and the
tasks small: what a task needs that is large, such as the dyad-year table, it names by path and
checksum and loads where it runs (``foedus.models.backtest.load_table``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from foedus.infra.errors import FoedusError, InvalidInput
from foedus.infra.parallel import cores

CONNECT_TIMEOUT = 5  # seconds a remote scheduler gets to answer
WORKER_TIMEOUT = 30  # seconds a remote scheduler gets to have at least one worker
# The environment variable that names a cluster (Dask's own: a bare ``distributed.Client()`` reads it too).
SCHEDULER_VARIABLE = "DASK_SCHEDULER_ADDRESS"


def identity() -> dict[str, str]:
    """Where the calling task runs, as fold-run tags: ``executed_by`` (the Dask worker's address
    and host, or this process) and ``worker_pid``."""
    host = socket.gethostname()
    address = None
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):  # ValueError: not inside a Dask task
        pass
    where = f"dask worker {address} on {host}" if address else f"the client process on {host}"
    return {"executed_by": where, "worker_pid": str(os.getpid())}


def code_digest() -> dict[str, str]:
    """What a task's results depend on besides its inputs: a digest of foedus's source files and
    the versions of the numerical libraries. A worker must match the client on all of them."""
    from importlib.metadata import version

    import foedus.features
    import foedus.models
    from foedus.features.provenance import source_digest

    folders = [Path(package.__file__).resolve().parent for package in (foedus.features, foedus.models)]
    libraries = {name: version(name) for name in ("numpy", "pandas", "scikit-learn", "lightgbm", "scipy")}
    return {"foedus source": source_digest(*folders), **libraries}


def _one_thread(fn: Callable, task):
    """``fn(task)`` on a worker, with one thread for BLAS and OpenMP (threadpoolctl) and for
    LightGBM, whose explicit ``num_threads`` an OpenMP limit does not cap: its own process-wide
    maximum does (``LGBM_SetMaxThreads``). Set and never lifted: a worker process runs tasks
    only, and a limit restored by one task while another runs (a worker of several threads)
    would change the other's thread count halfway."""
    import ctypes

    from threadpoolctl import threadpool_limits

    try:
        from lightgbm.basic import _LIB

        _LIB.LGBM_SetMaxThreads(ctypes.c_int(1))
    except (ImportError, AttributeError):  # no LightGBM, or one older than 4.2 (then num_threads rules)
        pass
    threadpool_limits(limits=1)  # OpenMP's count is per calling thread: set here, in the task's thread
    return fn(task)


# What every task needs, imported once in the fork server the local workers are forked from.
FORKSERVER_PRELOAD = ["distributed", "foedus.models.backtest"]


def _preload_forkserver() -> None:
    """Local workers are forked from a fork server that has imported ``FORKSERVER_PRELOAD``,
    not spawned: a spawned worker imports foedus, scikit-learn, LightGBM and pandas afresh
    (5 to 8 s of CPU each, measured), a forked one has them already. The server is a clean
    process of its own (no threads of this one's, so forking it is safe); it starts with the
    first cluster and serves every later one of this process. Called with Dask's
    ``multiprocessing-method`` set to ``forkserver``, after Dask has set its own preload list."""
    from distributed.utils import get_mp_context

    context = get_mp_context()  # the first call sets Dask's list; ours replaces it before the server starts
    context.set_forkserver_preload(FORKSERVER_PRELOAD)


class Executor:
    """Runs tasks and returns their results in order; see the module's description."""

    def __init__(self, kind: str, jobs: int = 1, client=None, address: str | None = None):
        self.kind = kind
        self.address = address  # the scheduler's, once there is one
        self._jobs = jobs
        self._client = client
        self._cluster = None

    @property
    def workers(self) -> int:
        """Worker processes: 1 in serial, the cluster's once it runs (the planned number before)."""
        if self._client is None:
            return self._jobs
        return len(self._client.scheduler_info(n_workers=-1)["workers"])

    def runs_here(self, n_tasks: int, light: bool = False) -> bool:
        """Would ``imap_unordered`` run ``n_tasks`` tasks in this process? Serially, yes; and a
        lone task, or light ones, are not worth a cluster's start (seconds, and the workers'
        memory): they run here unless the local cluster is up already."""
        return self.kind == "serial" or (self.kind == "local" and self._client is None and (n_tasks <= 1 or light))

    def map(self, fn: Callable, tasks: Iterable, priorities: Sequence[int] | None = None) -> list:
        """``[fn(task) for task in tasks]``, run by the executor."""
        results: list = [None] * len(tasks := list(tasks))
        for i, result in self.imap_unordered(fn, tasks, priorities):
            results[i] = result
        return results

    def imap_unordered(self, fn: Callable, tasks: Iterable, priorities: Sequence[int] | None = None,
                       light: bool = False) -> Iterator:
        """(index, result) of each task as soon as it is done. On workers, tasks of higher
        ``priorities`` start first (the long ones, so that no worker is left with a long task at
        the end); the serial executor runs them in order, one at a time as the results are asked
        for. A task's exception is raised here, and the tasks not yet done are cancelled; so are
        they when the caller stops early. ``light``: the tasks take seconds each, and run here
        unless the local cluster is already up."""
        tasks = list(tasks)
        if self.runs_here(len(tasks), light):
            yield from ((i, fn(task)) for i, task in enumerate(tasks))
            return
        from distributed import as_completed

        client = self._client or self._start_local(len(tasks))
        priorities = list(priorities) if priorities is not None else [0] * len(tasks)
        futures: dict = {}
        # submitted highest priority first: the scheduler hands the first few tasks of a new kind
        # straight to the workers, before it starts queueing them by priority
        for i in sorted(range(len(tasks)), key=lambda i: -priorities[i]):
            futures[client.submit(_one_thread, fn, tasks[i], pure=False, priority=priorities[i],
                                  key=f"{fn.__name__}-{i}-{os.urandom(4).hex()}")] = i
        try:
            for future in as_completed(list(futures), loop=client.loop):
                i = futures.pop(future)  # a result is released once the caller has it
                yield i, _result(future)
        finally:
            client.cancel(list(futures))

    def _start_local(self, n_tasks: int):
        import dask
        from distributed import Client, LocalCluster

        # processes, not threads: the fits hold the GIL in places (pandas, the tuning loop);
        # loopback only, the dashboard on a free port (8787 may be taken by a parallel run).
        # A worker takes a task only when its thread is free (saturation 1.0, Dask's default
        # 1.1 gives it a second one to hold): a long fold held behind another long one on a
        # busy worker ended a backtest with one worker idle for a minute.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                              "distributed.worker.multiprocessing-method": "forkserver"}):
            _preload_forkserver()
            self._cluster = LocalCluster(n_workers=min(self._jobs, n_tasks), threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                         silence_logs=logging.CRITICAL)
        self._client = Client(self._cluster, set_as_default=False)
        self.address = self._cluster.scheduler_address
        return self._client

    def close(self) -> None:
        if self._client is not None and self.kind == "local":
            self._client.close()
            self._cluster.close()
        elif self._client is not None:
            self._client.close()


def _result(future):
    """A future's result; a worker that died running it (killed, out of memory) is said in one line."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise FoedusError(f"a Dask worker died while running {future.key} (killed, or out of memory?); "
                          "the tasks before it are done: rerun") from exc


def choose(jobs: int | None = None, scheduler: str | None = None) -> tuple[str, int, str | None]:
    """(kind, worker processes, scheduler address) for ``jobs`` and ``scheduler`` (see the module)."""
    if jobs is not None and scheduler is not None:
        raise InvalidInput("give either --jobs (processes on this machine) or --scheduler (a Dask cluster), not both")
    if jobs is not None and jobs < 1:
        raise InvalidInput(f"--jobs {jobs}: give at least 1 (1 runs everything in this process)")
    if jobs is None and scheduler is None:
        scheduler = os.environ.get(SCHEDULER_VARIABLE) or None
    if scheduler is not None:
        return "remote", 0, scheduler
    jobs = cores() if jobs is None else jobs
    return ("serial", 1, None) if jobs == 1 else ("local", jobs, None)


async def _identity(address: str) -> dict:
    from distributed.core import rpc

    async with rpc(address, timeout=CONNECT_TIMEOUT) as scheduler:
        return await asyncio.wait_for(scheduler.identity(), CONNECT_TIMEOUT)


def _connect(address: str):
    """A client of the scheduler at ``address`` with at least one worker running this code."""
    from distributed import Client
    from distributed.comm import parse_address, parse_host_port

    where = f"the Dask scheduler {address} (--scheduler or {SCHEDULER_VARIABLE})"
    unanswered = (f"{where} does not answer within {CONNECT_TIMEOUT} s: start it (`dask scheduler`), or unset "
                  f"{SCHEDULER_VARIABLE} / give --jobs N to run here")
    try:
        protocol, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise FoedusError(f"{where} is not an address like tcp://host:8786") from exc
    try:
        # a scheduler's identity first, on a connection of our own: a Client that fails to
        # connect leaves a thread behind that stalls the interpreter's exit and prints a traceback
        kind = asyncio.run(_identity(address)).get("type")
    except Exception as exc:  # refused, unresolvable, timed out, or something else answered
        raise FoedusError(unanswered) from exc
    if kind != "Scheduler":
        raise FoedusError(f"{where} answers, but as a Dask {kind}, not a scheduler")
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise FoedusError(unanswered) from exc
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except TimeoutError as exc:
        client.close()
        raise FoedusError(f"{where} has no worker after {WORKER_TIMEOUT} s: start some with "
                          f"`dask worker {address}`") from exc
    mine = code_digest()
    for worker, theirs in client.run(code_digest).items():
        if theirs != mine:
            differ = ", ".join(f"{k} {theirs.get(k)} (here {v})" for k, v in mine.items() if theirs.get(k) != v)
            client.close()
            raise FoedusError(f"Dask worker {worker} runs other code than this process: {differ}; install the "
                              "same foedus commit and libraries there (results would differ)")
    return client


@contextmanager
def executor(jobs: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """The executor for ``jobs`` worker processes on this machine or the cluster at ``scheduler``
    (see the module); closed, with any cluster it started, when the block ends."""
    kind, n, address = choose(jobs, scheduler)
    if kind == "serial":
        yield Executor(kind)
        return
    from distributed.utils import silence_logging_cmgr

    # Dask's own log lines (a task's traceback, workers closing) stay off stderr: a task's error
    # reaches the caller as itself, and the CLI prints it in one line
    with silence_logging_cmgr(logging.CRITICAL):
        ex = Executor(kind, n, _connect(address) if kind == "remote" else None, address)
        try:
            yield ex
        finally:
            ex.close()
