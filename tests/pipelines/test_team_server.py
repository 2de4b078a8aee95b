"""A team's tracking server: ``foedus server`` runs MLflow on a real PostgreSQL (a throwaway
cluster of Debian's binaries, on a loopback port), two researchers backtest through it at once,
one trains, and everything lands in the database and on the server's artifact store. Every
command that touches MLflow fails at once, in one line, when the server does not answer.

The PostgreSQL test fails, never skips, when PostgreSQL's binaries are missing: CI must run it
(``.ci/run`` installs them)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error, foedus, foedus_here
from tests.pipelines.process_helpers import alive, children, cmdline, group, process
from tests.pipelines.store_helpers import (
    FOLDS,
    REGISTERED,
    SPEC,
    YEARS,
    assert_complete_backtest,
    built_data,
    env_for,
    runs,
    start,
)

ROLE, DATABASE = "foedus_ci", "mlflow"


class ThrowawayCluster:
    """A PostgreSQL cluster of Debian's binaries in a temporary folder, on a free loopback port,
    with a role and a database for MLflow; run as the ``postgres`` user when the tests run as
    root (initdb refuses root)."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
        if not found:
            pytest.fail("PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin/initdb) are missing: "
                        "apt-get install postgresql (.ci/run does)")
        from foedus.ui import free_port

        self.bin = Path(found[-1]).parent
        self.port = free_port()
        self.password = os.urandom(12).hex()
        # not under pytest's tmp_path: its folders are private to this user, and the cluster's
        # user must reach its own; short, too, for the Unix socket's path limit
        self.folder = Path(tempfile.mkdtemp(prefix="foedus-pg-"))
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.postmaster: tuple[int, str] | None = None
        self.processes: set[tuple[int, str]] = set()

    @property
    def env(self) -> dict:
        """What `foedus server start` reads: libpq's variables."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": ROLE, "PGPASSWORD": self.password,
                "PGDATABASE": DATABASE}

    def run(self, *args, input=None):
        result = subprocess.run([*self.as_owner, *map(str, args)], capture_output=True, text=True, input=input,
                                timeout=120, cwd=self.folder)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def start(self) -> None:
        data = self.folder / "data"
        self.run(self.bin / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        # fsync off: a throwaway cluster need not survive a power cut
        self.run(self.bin / "pg_ctl", "-D", data, "-l", self.folder / "log", "-w", "-t", "60", "-o",
                 f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off", "start")
        self.postmaster = process(int((data / "postmaster.pid").read_text().split()[0]))
        # the password goes through stdin, not a command line every user can read
        self.as_superuser(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}';\n"
                          f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n")
        self.note_processes()

    def as_superuser(self, sql: str, database: str = "postgres") -> None:
        self.run(self.bin / "psql", "-h", self.folder, "-p", self.port, "-U", "postgres", "-d", database,
                 "-v", "ON_ERROR_STOP=1", "-q", "-f", "-", input=sql)

    def note_processes(self) -> None:
        """Remember the postmaster's processes now (its backends come and go)."""
        if self.postmaster is not None:
            self.processes |= {self.postmaster, *children(self.postmaster[0])}

    def query(self, sql: str, database: str = DATABASE) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE, password=self.password,
                              dbname=database, connect_timeout=5) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        connection.close()
        return rows

    def stop(self) -> None:
        """``pg_ctl stop`` (fast: backends are told to quit), then the postmaster by its pid if
        it is somehow still there; the folder goes."""
        if self.postmaster is not None and alive(self.postmaster):
            self.note_processes()
            subprocess.run([*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                            "-w", "-t", "30", "stop"], capture_output=True, timeout=60)
            if alive(self.postmaster):
                os.kill(self.postmaster[0], 9)
        shutil.rmtree(self.folder, ignore_errors=True)


def _server(*args, env: dict, state: Path):
    return foedus("server", *args, "--state", str(state), env_extra={"FOEDUS_HOME": str(ROOT), **env})


@pytest.mark.postgres
def test_two_researchers_backtest_at_once_and_one_trains_through_a_postgresql_tracking_server(tmp_path, paths, built):
    import mlflow
    from mlflow.tracking import MlflowClient

    cluster = ThrowawayCluster()
    state = tmp_path / "server.json"
    served = tmp_path / "served-artifacts"
    server_processes: set[tuple[int, str]] = set()
    launched = []  # the foedus processes started in the background, waited for or killed at the end
    try:
        cluster.start()

        # a wrong password or database: one line naming the database, not the password; no server
        wrong = _server("start", "--port", "0", env={**cluster.env, "PGPASSWORD": "not-" + cluster.password},
                        state=state)
        assert_user_error(wrong, f"cannot connect to the MLflow database postgresql+psycopg2://{ROLE}@127.0.0.1:"
                                 f"{cluster.port}/{DATABASE}", "password authentication failed")
        assert cluster.password not in wrong.stderr and not state.exists()
        assert_user_error(_server("start", "--port", "0", env={**cluster.env, "PGDATABASE": "nope"}, state=state),
                          'database "nope" does not exist')
        # a database the role reaches but may not create tables in: the server itself dies at
        # start-up, and says why only in its log
        cluster.as_superuser("CREATE DATABASE not_ours;\n")
        cluster.as_superuser("REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n", database="not_ours")
        dead = _server("start", "--port", "0", "--workers", "1", "--artifacts", str(tmp_path / "dead"),
                       env={**cluster.env, "PGDATABASE": "not_ours"}, state=state)
        assert_user_error(dead, "the MLflow server exited with code", "permission denied for schema public",
                          f"whole log: {state.with_suffix('.log')}")
        assert not state.exists()
        assert not [p for p in os.listdir("/proc") if p.isdigit() and str(tmp_path / "dead") in cmdline(int(p))]

        # the server starts while the data are built: its start-up takes seconds
        server_env = {"FOEDUS_HOME": str(ROOT), "MLFLOW_TRACKING_URI": "", **cluster.env}
        starting = start("server", "start", "--port", "0", "--workers", "2", "--artifacts", str(served),
                         "--state", str(state), env=server_env)
        launched.append(starting)
        data = built_data(tmp_path, paths, built)
        said, complaints = starting.communicate(timeout=180)
        assert starting.returncode == 0, said + complaints
        uri = re.search(r"export MLFLOW_TRACKING_URI=(http://127\.0\.0\.1:\d+)$", said, re.M)[1]
        recorded = json.loads(state.read_text())
        assert recorded["uri"] == uri and recorded["host"] == "127.0.0.1"
        server_processes = group(recorded["pgid"])
        assert (recorded["pid"], recorded["process_start"]) in server_processes
        # the password is in none of what foedus shows or keeps, nor on any command line
        log = Path(recorded["log"]).read_text()
        for text in (said, complaints, log, state.read_text(), *(cmdline(p) for p, _ in server_processes)):
            assert cluster.password not in text

        shown = _server("status", env=cluster.env, state=state)
        assert shown.returncode == 0 and f"running at {uri}" in shown.stdout
        assert f"export MLFLOW_TRACKING_URI={uri}" in shown.stdout

        # two researchers at once, each its own model; the store is only the server
        env = env_for(data, tmp_path / "no-local-store", MLFLOW_TRACKING_URI=uri)
        first = start("backtest", "-l", SPEC, "--models", "base-rate", "--folds", FOLDS, *YEARS, env=env)
        second = start("backtest", "-l", SPEC, "--models", "logit-threat", "--folds", FOLDS, *YEARS, env=env)
        launched += [first, second]
        for backtest in (first, second):
            _, errors = backtest.communicate(timeout=300)
            assert backtest.returncode == 0, errors
        cluster.note_processes()
        trained = foedus("train", "-l", SPEC, "--model", "base-rate", *YEARS, env_extra=env)
        assert trained.returncode == 0, trained.stderr
        train_run = re.search(r"\(run ([0-9a-f]{32})\)", trained.stdout)[1]
        assert not (tmp_path / "no-local-store").exists(), "nothing went to a local store"

        # a sweep whose study is in the team's PostgreSQL (its own database), its runs on the server
        cluster.as_superuser(f"CREATE DATABASE optuna OWNER {ROLE};\n")
        swept = foedus("sweep", "-l", SPEC, "--folds", "1919-1938", "--no-final", "--trials", "2", "--batch", "2",
                       "--jobs", "1", env_extra={**env, "PGPASSWORD": cluster.password,
                                                 "FOEDUS_SWEEP_STORAGE": f"postgresql+psycopg2://{ROLE}@127.0.0.1:"
                                                                         f"{cluster.port}/optuna"})
        assert swept.returncode == 0, swept.stderr
        assert f"postgresql+psycopg2://{ROLE}:***@127.0.0.1:{cluster.port}/optuna" in swept.stdout  # PGPASSWORD, hidden
        assert cluster.password not in swept.stdout + swept.stderr
        assert cluster.query("SELECT count(*) FROM trials WHERE state = 'COMPLETE'", "optuna") == [(2,)]
        assert not (tmp_path / "no-local-store").exists(), "no local optuna.db either"

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        every = runs(client)
        assert every and all(r.info.status == "FINISHED" for r in every), [(r.info.run_name, r.info.status)
                                                                           for r in every]
        sweep_runs = [r for r in every if r.data.tags.get("kind", "").startswith("sweep")]
        assert sorted(r.data.tags["kind"] for r in sweep_runs) == ["sweep", "sweep-trial", "sweep-trial"]
        parents = [r for r in every if r.data.tags.get("kind") == "backtest"]
        assert sorted(r.data.tags["model"] for r in parents) == ["base-rate", "logit-threat"]
        # one parent from each process (both ran before either was waited for)
        assert {r.data.tags["foedus.pid"] for r in parents} == {str(first.pid), str(second.pid)}
        for parent in parents:
            assert_complete_backtest(client, parent)  # metrics, artifacts and models of the parent and its folds

        # artifacts are the server's: uploaded through it, kept under --artifacts, downloaded through it
        base = next(r for r in parents if r.data.tags["model"] == "base-rate")
        assert base.info.artifact_uri.startswith("mlflow-artifacts:"), base.info.artifact_uri
        fetched = Path(client.download_artifacts(base.info.run_id, "summary.md", str(tmp_path / "downloaded")))
        on_server = list(served.rglob(f"{base.info.run_id}/artifacts/summary.md"))
        assert len(on_server) == 1 and fetched.read_bytes() == on_server[0].read_bytes()
        assert "base-rate" in fetched.read_text()

        # the final model: registered from the train run, and the champion
        (version,) = client.search_model_versions(f"name = '{REGISTERED}'")
        assert version.run_id == train_run and version.status == "READY"
        assert client.get_model_version_by_alias(REGISTERED, "champion").version == version.version
        # its files are on the server's artifact store, and come back through it
        stored = client.get_model_version_download_uri(REGISTERED, version.version)
        assert stored.startswith("mlflow-artifacts:"), stored
        mlmodel = mlflow.artifacts.download_artifacts(f"{stored}/MLmodel", tracking_uri=uri,
                                                      dst_path=str(tmp_path / "model"))
        assert "python_function" in Path(mlmodel).read_text() and train_run in Path(mlmodel).read_text()

        # and it is all in PostgreSQL itself
        assert cluster.query("SELECT count(*) FROM runs")[0][0] == len(every)
        assert cluster.query("SELECT count(*) FROM runs WHERE status <> 'FINISHED'")[0][0] == 0
        assert cluster.query(f"SELECT count(*) FROM metrics WHERE run_uuid = '{base.info.run_id}'")[0][0] > 0
        assert cluster.query(f"SELECT version FROM registered_model_aliases WHERE name = '{REGISTERED}' "
                             "AND alias = 'champion'") == [(int(version.version),)]
        cluster.note_processes()
        server_processes |= group(recorded["pgid"])

        stopped = _server("stop", env=cluster.env, state=state)
        assert stopped.returncode == 0 and f"stopped the MLflow tracking server at {uri}" in stopped.stdout
        assert not state.exists()
        gone = _server("status", env=cluster.env, state=state)
        assert gone.returncode == 3 and "not running" in gone.stdout
    finally:
        for child in launched:
            if child.poll() is None:  # a failed assertion left it running
                child.kill()
                child.communicate()
        if state.exists():
            _server("stop", env=cluster.env, state=state)
        cluster.stop()
    assert server_processes and not {p for p in server_processes if alive(p)}, "the server's processes are gone"
    assert cluster.processes and not {p for p in cluster.processes if alive(p)}, "PostgreSQL's processes are gone"
    assert not cluster.folder.exists()


# --- without PostgreSQL: the environment, the state file and the start-up watch ---------------

@pytest.mark.parametrize("command", [["server"], ["server", "start"], ["server", "status"], ["server", "stop"]])
def test_server_commands_have_help(command):
    from foedus.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0 and "Usage" in result.output, result.output


def test_start_without_a_database_user_says_which_variables_to_set(tmp_path):
    env = {"PGUSER": "", "PGPASSWORD": "", "PGHOST": "", "PGPORT": "", "PGDATABASE": ""}
    result = _server("start", env=env, state=tmp_path / "server.json")
    assert_user_error(result, "no database user", "PGUSER", "PGPASSWORD")
    assert not (tmp_path / "server.json").exists()


def test_status_and_stop_without_a_server(tmp_path):
    state = tmp_path / "server.json"
    shown = _server("status", env={}, state=state)
    assert shown.returncode == 3 and "not running" in shown.stdout
    stopped = _server("stop", env={}, state=state)
    assert stopped.returncode == 0 and "nothing to stop" in stopped.stdout


def test_a_state_file_of_a_process_that_has_exited_is_not_running_and_stop_kills_nothing(tmp_path):
    """A pid from the state file that has since been reused by another program is left alone."""
    from foedus.server import ServerState, _write_state

    state = tmp_path / "server.json"
    # this test's own process: alive, but not the server recorded (another start time)
    _write_state(state, ServerState(os.getpid(), os.getpgid(0), "1", "http://127.0.0.1:1", "127.0.0.1", 1,
                                    "postgresql+psycopg2://x@127.0.0.1:5432/mlflow", str(tmp_path),
                                    str(tmp_path / "log"), "2026-01-01T00:00:00+00:00"))
    shown = _server("status", env={}, state=state)
    assert shown.returncode == 3 and "has exited" in shown.stdout
    stopped = _server("stop", env={}, state=state)
    assert stopped.returncode == 0 and "had already exited" in stopped.stdout and not state.exists()


def test_database_uri_from_libpq_variables_never_holds_the_password():
    from foedus.server import database_uri, masked

    env = {"PGUSER": "alice", "PGPASSWORD": "s3cret:@/x", "PGHOST": "db.example.org", "PGPORT": "5433"}
    assert database_uri(env) == "postgresql+psycopg2://alice@db.example.org:5433/mlflow"
    assert database_uri({"PGUSER": "alice", "PGHOST": "/run/postgresql"}) == \
        "postgresql+psycopg2://alice@/mlflow?host=%2Frun%2Fpostgresql&port=5432"
    line = masked("connect postgresql+psycopg2://alice:s3cret@db/mlflow failed; password s3cret:@/x", env)
    assert "s3cret" not in line and "alice:***@db" in line


def test_the_uri_clients_export_is_one_mlflow_accepts():
    from foedus.server import _public_uri

    assert _public_uri("127.0.0.1", 5000) == "http://127.0.0.1:5000"
    # on every interface, reached by name: the name MLflow was told to accept
    assert _public_uri("0.0.0.0", 5000, "statslab.example.org,10.*") == "http://statslab.example.org:5000"
    assert _public_uri("0.0.0.0", 5000, "statslab.example.org:8080") == "http://statslab.example.org:8080"
    # else an address of this machine, not a wildcard
    assert re.fullmatch(r"http://[^*]+:5000", _public_uri("0.0.0.0", 5000, "10.*"))


def test_a_server_that_dies_at_start_up_is_reported_with_the_last_line_of_its_log(tmp_path):
    """As MLflow does with a missing driver: it logs the error and exits (SCALE-NOTES)."""
    from foedus.infra.errors import FoedusError
    from foedus.server import _wait_ready
    from foedus.ui import free_port

    log = tmp_path / "server.log"
    with open(log, "w") as sink:
        dying = subprocess.Popen([sys.executable, "-c", "print('starting'); print(\"ModuleNotFoundError: No module "
                                  "named 'psycopg'\"); raise SystemExit(1)"], stdout=sink, stderr=subprocess.STDOUT)
    with pytest.raises(FoedusError, match=r"exited with code 1 before answering .*No module named 'psycopg'"):
        _wait_ready(f"http://127.0.0.1:{free_port()}", dying, log, timeout=30)


# --- every command that touches MLflow checks the server first -------------------------------

@pytest.fixture
def project(tmp_path, paths):
    data = tmp_path / "data"
    shutil.copytree(paths.raw, data / "raw")
    return {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(data), "FOEDUS_MIRROR": str(tmp_path / "no-mirror")}


# backtest, train and compare: tests/pipelines/test_cli.py
@pytest.mark.parametrize("command", [
    ["score", "USA", "France", "--year", "1990"], ["rank"], ["threats"], ["report"],
    ["staleness", "--model", "base-rate", "--years", "2020"], ["ui"],
    ["run", "-l", "atop:defense:1", "--models", "base-rate", "--no-present", "--no-report"],
    ["sweep", "--trials", "1", "--jobs", "1"],
])
def test_every_other_command_fails_at_once_when_the_tracking_server_does_not_answer(project, command):
    from foedus.ui import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    # in this process: the check before any work is the point, not the process boundary
    result = foedus_here(*command, env_extra={**project, "MLFLOW_TRACKING_URI": uri})
    assert_user_error(result, f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists(), "nothing was built"


def test_batch_scoring_fails_at_once_when_the_tracking_server_does_not_answer(project, tmp_path):
    from foedus.ui import free_port

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("state_a,state_b,year\nUSA,France,1990\n")
    uri = f"http://127.0.0.1:{free_port()}"
    result = foedus_here("score", "--input", str(pairs), "--output", str(tmp_path / "scored.csv"),
                         env_extra={**project, "MLFLOW_TRACKING_URI": uri})
    assert_user_error(result, f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer")
    assert not (tmp_path / "scored.csv").exists()
