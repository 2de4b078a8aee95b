"""A shared MLflow tracking server on PostgreSQL, for a team: ``start``, ``stop`` and ``status``.

The database is named by libpq's own environment variables, the ones ``psql`` reads:
``PGUSER`` (required), ``PGPASSWORD`` (or a ``~/.pgpass`` entry), ``PGHOST`` (default
127.0.0.1), ``PGPORT`` (5432) and ``PGDATABASE`` (mlflow). The password never appears in the
server's command line (which ``ps`` shows to every user), in the state file or in a message:
the server gets it through its environment, and psycopg2 reads it from there.

Runs and the model registry go to PostgreSQL through ``postgresql+psycopg2://`` (SQLAlchemy's
plain ``postgresql://`` means psycopg 3, which is not installed, and the server then dies at
start-up: ../shared/SCALE-NOTES.md). Artifacts are served by the server (``--serve-artifacts``)
from ``--artifacts`` on its own disk, so clients need ``MLFLOW_TRACKING_URI`` and nothing else.
The server binds 127.0.0.1 unless told otherwise.

One server per state file (default ``mlruns/server.json``), which records its process, process
group, address and database; its output goes to the log beside it (``mlruns/server.log``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from foedus.infra.atomic import exclusive, make_folder, write_atomic
from foedus.infra.config import Paths
from foedus.infra.errors import FoedusError
from foedus.ui import HOST, READY_TIMEOUT, free_port, server_env, stop_server

DEFAULT_PORT = 5000
STOP_TIMEOUT = 10.0  # seconds the server's processes get to leave after SIGTERM before SIGKILL
CONNECT_TIMEOUT = 5  # seconds for the database check, as for a tracking server's /health (tracking.SERVER_TIMEOUT)
DATABASE_HELP = ("set PGUSER and PGPASSWORD (or a ~/.pgpass entry) for the MLflow database; PGHOST, PGPORT and "
                 "PGDATABASE default to 127.0.0.1, 5432 and mlflow")


@dataclass(frozen=True)
class ServerState:
    """What ``start`` recorded about a server: enough to stop it and to tell clients where it is."""

    pid: int
    pgid: int  # its process group: the server, its uvicorn workers and job consumers
    process_start: str  # the server's start time in clock ticks since boot: a reused pid is not it
    uri: str  # what clients export as MLFLOW_TRACKING_URI
    host: str
    port: int
    database: str  # the backend store URI, without password
    artifacts: str
    log: str
    started: str  # UTC, ISO 8601


@dataclass(frozen=True)
class ServerStatus:
    """A state file's server now: ``running`` when its process lives and /health answers."""

    state: ServerState | None
    alive: bool
    answering: bool

    @property
    def running(self) -> bool:
        return self.alive and self.answering


@dataclass(frozen=True)
class Stopped:
    """What ``stop`` found and did: ``state`` None if no server was recorded; ``was_running``
    false for a state file whose server had already gone; ``forced`` if SIGKILL was needed."""

    state: ServerState | None
    was_running: bool = False
    forced: bool = False


def state_path(state: Path | None = None, paths: Paths | None = None) -> Path:
    """The state file: ``state`` if given, else ``mlruns/server.json`` in the project."""
    if state is not None:
        return Path(state).resolve()
    return (paths or Paths.discover()).root / "mlruns" / "server.json"


def database_uri(env: dict | None = None) -> str:
    """The backend store URI from libpq's variables, without the password (psycopg2 takes
    ``PGPASSWORD`` or ``~/.pgpass`` itself)."""
    from sqlalchemy.engine import URL

    env = os.environ if env is None else env
    user = env.get("PGUSER")
    if not user:
        raise FoedusError(f"no database user: {DATABASE_HELP}")
    host = env.get("PGHOST") or HOST
    port = env.get("PGPORT") or "5432"
    if not port.isdigit():
        raise FoedusError(f"PGPORT={port} is not a port number: {DATABASE_HELP}")
    database = env.get("PGDATABASE") or "mlflow"
    if host.startswith("/"):  # a Unix-socket folder goes in the query, as libpq's host parameter
        url = URL.create("postgresql+psycopg2", user, database=database, query={"host": host, "port": port})
    else:
        url = URL.create("postgresql+psycopg2", user, host=host, port=int(port), database=database)
    return url.render_as_string(hide_password=False)


_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def masked(text: str, env: dict | None = None) -> str:
    """``text`` with the database password (``PGPASSWORD``, and any ``user:password@`` of a URI)
    replaced by ``***``: every message and log line shown passes through here."""
    env = os.environ if env is None else env
    text = _URI_PASSWORD.sub(r"\1***@", text)
    password = env.get("PGPASSWORD")
    return text.replace(password, "***") if password else text


def check_database(env: dict | None = None) -> str:
    """Connect once to the database the server would use; a one-line FoedusError (the server's
    own failure would come only after its start-up, in its log) if the driver is missing or the
    database refuses. Returns the backend store URI."""
    env = os.environ if env is None else env
    uri = database_uri(env)
    try:
        import psycopg2
    except ImportError as error:
        raise FoedusError("psycopg2 is not installed, and MLflow needs it for PostgreSQL: "
                          "pip install 'psycopg2-binary>=2.9,<3' (it is in foedus's dependencies)") from error
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    params = {"dbname": url.database, "user": url.username, "connect_timeout": CONNECT_TIMEOUT,
              "host": url.host or url.query.get("host"), "port": url.port or url.query.get("port")}
    try:
        psycopg2.connect(**{k: v for k, v in params.items() if v is not None}).close()
    except psycopg2.Error as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise FoedusError(masked(f"cannot connect to the MLflow database {uri}: {reason} (check PGUSER, "
                                 "PGPASSWORD or ~/.pgpass, PGHOST, PGPORT, PGDATABASE; the role and the database "
                                 "must exist: README, Team use)", env)) from error
    return uri


def start(host: str = HOST, port: int = DEFAULT_PORT, artifacts: Path | None = None, *, workers: int | None = None,
          allowed_hosts: str | None = None, state: Path | None = None, paths: Paths | None = None,
          timeout: float = READY_TIMEOUT) -> ServerState:
    """Start ``mlflow server`` on ``host:port`` against the PostgreSQL database of the environment
    (see the module), serving artifacts from ``artifacts`` (default ``mlruns/server-artifacts``),
    and wait until /health answers. Its own process group, so that ``stop`` ends every process
    it forks. A FoedusError, with the server stopped and no state file left, if the database or
    the port is not usable or the server exits or does not answer within ``timeout`` seconds
    (the last line of its log says why). ``port`` 0: a free one. ``workers``: uvicorn workers
    (default MLflow's, 4). ``allowed_hosts``: MLflow's ``--allowed-hosts``, the Host headers it
    accepts besides localhost (by default private addresses; a server reached by name needs its name)."""
    paths = paths or Paths.discover()
    path = state_path(state, paths)
    artifacts = Path(artifacts).resolve() if artifacts is not None else paths.root / "mlruns" / "server-artifacts"
    if not 0 <= port < 65536:
        raise FoedusError(f"--port {port}: give a TCP port between 1 and 65535 (0: a free one)")
    if workers is not None and workers < 1:
        raise FoedusError(f"--workers {workers}: give at least 1")
    make_folder(path.parent)
    # two starts at once must not both find no server and both start one
    with exclusive(path.with_name(f".{path.name}.lock"), "foedus server start"):
        earlier = status(path)
        if earlier.alive:
            raise FoedusError(f"a server of {path} is already running at {earlier.state.uri} (process "
                              f"{earlier.state.pid}): `foedus server stop` first, or give another --state")
        if port == 0:
            port = free_port()  # free on loopback; _check_port checks it on ``host``
        _check_port(host, port)
        database = check_database()
        make_folder(artifacts)
        log = path.with_suffix(".log")
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", database,
                   "--serve-artifacts", "--artifacts-destination", str(artifacts),
                   "--host", host, "--port", str(port)]
        if workers:
            command += ["--workers", str(workers)]
        if allowed_hosts:
            # MLflow's list replaces its default (localhost and private addresses): this machine's
            # own clients, foedus's checks among them, keep reaching it on loopback
            command += ["--allowed-hosts", f"{allowed_hosts},localhost,localhost:*,127.0.0.1,127.0.0.1:*"]
        env = server_env()
        # the log is a stream the server appends to as it runs, not an output to write atomically;
        # each start begins it afresh, so its last line is this server's
        with open(log, "w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        try:
            recorded = ServerState(process.pid, process.pid, str(_proc(process.pid).started),
                                   _public_uri(host, port, allowed_hosts), host, port, database, str(artifacts),
                                   str(log), datetime.now(UTC).isoformat(timespec="seconds"))
            # recorded before the wait, so that a `foedus server start` killed while waiting leaves
            # a server `foedus server stop` can still find
            _write_state(path, recorded)
            _wait_ready(_probe_url(host, port), process, log, timeout)
        except BaseException:
            stop_server(process)
            path.unlink(missing_ok=True)
            raise
    return recorded


def status(state: Path | None = None, paths: Paths | None = None) -> ServerStatus:
    """The recorded server: is its process alive (the same process, not a reused pid) and does
    its /health answer? ``state`` None in the result if no server is recorded."""
    recorded = read_state(state_path(state, paths))
    if recorded is None:
        return ServerStatus(None, False, False)
    alive = _proc(recorded.pid).started == recorded.process_start
    return ServerStatus(recorded, alive, alive and _answers(_probe_url(recorded.host, recorded.port)))


def stop(state: Path | None = None, paths: Paths | None = None, timeout: float = STOP_TIMEOUT) -> Stopped:
    """Stop the recorded server's whole process group by its id (SIGTERM; SIGKILL for whatever
    is left after ``timeout`` seconds) and remove the state file. A process id that now belongs
    to another program is left alone."""
    path = state_path(state, paths)
    recorded = read_state(path)
    if recorded is None:
        return Stopped(None)
    leader = _proc(recorded.pid)
    # the group is ours if its leader is our server, or if the leader is gone and members remain
    # (Linux never hands out a process group id still in use as a new process id)
    ours = leader.started == recorded.process_start or (leader.started is None and _members(recorded.pgid))
    forced = _stop_group(recorded.pgid, timeout) if ours else False
    path.unlink(missing_ok=True)
    return Stopped(recorded, bool(ours), forced)


def read_state(path: Path) -> ServerState | None:
    """The state file's record, or None if there is none (or it is unreadable: no server to trust)."""
    try:
        return ServerState(**json.loads(Path(path).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        raise FoedusError(f"{path} is not a foedus server state file ({error}): remove it if no server of "
                          "this project runs, then start again") from error


def _write_state(path: Path, state: ServerState) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(asdict(state), indent=2) + "\n"))


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # as the server will bind it: a port left in TIME_WAIT by an earlier server is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise FoedusError(f"cannot listen on {host}:{port} ({error.strerror or error}): give --port another "
                              "number, or --host an address of this machine") from error


def _probe_url(host: str, port: int) -> str:
    """Where this machine reaches the server (a server on every interface answers on loopback)."""
    local = {"0.0.0.0": HOST, "::": "::1", "": HOST}.get(host, host)
    return f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"


def _public_uri(host: str, port: int, allowed_hosts: str | None = None) -> str:
    """What clients export. For a server on every interface: the first name of ``allowed_hosts``
    (MLflow refuses requests addressed otherwise), else this machine's address on the way out
    (MLflow accepts private addresses by default)."""
    if host not in ("0.0.0.0", "::", ""):
        return _probe_url(host, port)
    named = [name.strip() for name in (allowed_hosts or "").split(",") if name.strip() and "*" not in name]
    if named:
        return f"http://{named[0]}" if re.search(r":\d+$", named[0]) else f"http://{named[0]}:{port}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing, it only picks the interface
            address = probe.getsockname()[0]
        except OSError:  # no route out: the name is the best guess
            address = socket.getfqdn()
    return f"http://{address}:{port}"


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _wait_ready(base: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until /health answers; the server can also die at start-up (a missing driver, an old
    schema) and then only its log says why: its last line goes into the error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FoedusError(f"the MLflow server exited with code {process.returncode} before answering at {base}: "
                              f"{_last_line(log)} (whole log: {log})")
        if _answers(base):
            return
        time.sleep(0.5)
    raise FoedusError(f"the MLflow server did not answer at {base} within {timeout:.0f} s; its log ends: "
                      f"{_last_line(log)} (whole log: {log})")


# the line of a Python traceback that names the exception ("sqlalchemy.exc.ProgrammingError: ...")
_EXCEPTION = re.compile(r"^[\w.]*(Error|Exception|Exit)\b.*: ")


def _last_line(log: Path) -> str:
    """What the log says went wrong: the last exception a traceback names, else its last ERROR
    line, else its last line (SQLAlchemy ends its errors with a link, not the reason)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    for wanted in (_EXCEPTION.match, lambda line: " ERROR " in line, bool):
        found = [line for line in lines if wanted(line)]
        if found:
            return masked(found[-1][:300])
    return "(the log is empty)"


@dataclass(frozen=True)
class _Proc:
    state: str | None = None
    pgid: int | None = None
    started: str | None = None  # None: no such process (or a zombie, which runs nothing)


def _proc(pid: int) -> _Proc:
    """A process's state, group and start time from /proc/<pid>/stat (Linux, as foedus's
    recovery of killed runs)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # the command name (field 2) may hold spaces and parentheses: count from the last ')'
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return _Proc()
    if fields[0] == "Z":
        return _Proc("Z", int(fields[2]))
    return _Proc(fields[0], int(fields[2]), fields[19])


def _members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _proc(int(entry))
            if proc.pgid == pgid and proc.started is not None:
                found.append(int(entry))
    return found


def _stop_group(pgid: int, timeout: float) -> bool:
    """SIGTERM to the group, SIGKILL to whatever is left after ``timeout``; returns whether
    SIGKILL was needed. This process is not the server's parent, so it waits on /proc, where
    a killed process not yet reaped by its parent shows as a zombie and counts as gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return sig == signal.SIGKILL
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not _members(pgid):
                return sig == signal.SIGKILL
            time.sleep(0.2)
    raise FoedusError(f"processes {_members(pgid)} of the MLflow server's group {pgid} survived SIGKILL")
