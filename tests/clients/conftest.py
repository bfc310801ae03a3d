"""Acceptance tests with real clients: each test module gets a real `citydata serve` on a free
port, on a fresh database holding the built-in demo, and stops it at the end.

The binary is $CITYDATA_BIN, else target/debug/citydata (scripts/test builds it first).
"""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def binary():
    b = os.environ.get("CITYDATA_BIN") or str(ROOT / "target" / "debug" / "citydata")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"no citydata binary at {b}: build it first (cargo build -p citydata)")
    return b


class Server:
    """A running `citydata serve`, with its database folder."""

    def __init__(self, folder, *args):
        self.folder = pathlib.Path(folder)
        self.db = self.folder / "citydata.db"
        self.proc = subprocess.Popen(
            [binary(), "serve", "--port", "0", "--db", str(self.db), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        urls = [w for w in line.split() if w.startswith("http://")]
        if not urls:
            self.proc.kill()
            raise RuntimeError(f"citydata serve printed no URL: {line!r}")
        self.url = urls[0].rstrip("/")

    def publish(self, path, dataset, *args):
        """Publishes a file into the same database while the server runs."""
        out = subprocess.run(
            [binary(), "publish", str(path), "--dataset", dataset, "--db", str(self.db), *args],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"publish failed: {out.stderr}")
        return out.stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def demo_db():
    """A database holding the built-in demo, made once per session by a real `citydata serve` (the
    demo loads when it starts on a new database) and stopped cleanly; modules get copies."""
    with tempfile.TemporaryDirectory() as folder:
        s = Server(folder)
        s.stop()
        yield s.db


@pytest.fixture(scope="module")
def server(demo_db):
    """A server on a copy of the demo database, for the tests of one module."""
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("", "-wal"):
            src = pathlib.Path(str(demo_db) + suffix)
            if src.exists():
                shutil.copyfile(src, pathlib.Path(folder) / ("citydata.db" + suffix))
        s = Server(folder)
        try:
            yield s
        finally:
            s.stop()
