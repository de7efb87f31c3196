"""The embedded local stack: a private PostgreSQL cluster and Redis under a directory, on free ports.

Used by ``make run`` (under ./var, data kept between runs) and by the tests (under a temporary directory).
PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user.
A missing server binary is installed with apt when we are root, or named in a one-line error.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DB_NAME = "telehealth"


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise StackError(f"nothing answered on {host}:{port} within {timeout:.0f} s")


def _apt_install(package: str, what: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"{what} not found: install it (Debian/Ubuntu: `sudo apt-get install {package}`)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)


def postgres_bindir() -> Path:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if versions and (Path(versions[-1]) / "initdb").exists():
        return Path(versions[-1])
    which = shutil.which("initdb")
    if which:
        return Path(os.path.realpath(which)).parent
    _apt_install("postgresql", "PostgreSQL server (initdb)")
    return postgres_bindir()


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    _apt_install("redis-server", "Redis server (redis-server)")
    found = shutil.which("redis-server")
    if not found:
        raise StackError("redis-server still missing after installing it")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


@dataclass
class Postgres:
    """A private PostgreSQL cluster in ``base`` (data in base/data, socket and log in base/run)."""

    base: Path
    port: int = 0
    bindir: Path = field(default_factory=postgres_bindir)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    def url(self, db: str = DB_NAME, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def start(self) -> Postgres:
        self.base.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.base, 0o755)
            for parent in self.base.parents:  # the postgres user must reach the directory
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o011)
        if not (self.data / "PG_VERSION").exists():
            self.data.mkdir(parents=True, exist_ok=True)
            _chown_postgres(self.base)
            subprocess.run(
                _as_postgres([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                              "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
                check=True, stdout=subprocess.DEVNULL,
            )
        _chown_postgres(self.run_dir)
        self.stop(quiet=True)  # a cluster left running by a killed run
        self.port = self.port or free_port()
        opts = (f"-p {self.port} -k {self.run_dir} -c listen_addresses=127.0.0.1 -c fsync=on "
                f"-c max_connections=200 -c shared_buffers=128MB")
        subprocess.run(
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                          "-l", str(self.run_dir / "postgres.log"), "-w", "-t", "60", "start"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        self._ensure_database()
        return self

    def _ensure_database(self) -> None:
        psql = [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAq"]
        exists = subprocess.run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'"],
                                check=True, capture_output=True, text=True).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DB_NAME}"], check=True)

    def stop(self, quiet: bool = False) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            check=not quiet, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )


@dataclass
class Redis:
    """A private Redis in ``base``; ``persist`` keeps an append-only file between runs."""

    base: Path
    port: int = 0
    persist: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base),
                "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--logfile", str(self.base / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
