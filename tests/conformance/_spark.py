"""A local Spark Connect server for the tests: Java 17 (Debian) and pyspark (PyPI).

Started once per test session when nothing answers on the port (``.ci/run`` starts it first,
so the suite does not wait for it), with a small heap, two shuffle partitions, no UI, tasks
killed on cancel, and a warehouse of its own; stopped at the end if it was started here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HOST, PORT = "127.0.0.1", int(os.environ.get("QUERYREF_SPARK_PORT", "15002"))
URL = os.environ.get("QUERYREF_SPARK_URL", f"sc://{HOST}:{PORT}")
#: the server's settings: small and quick to start on two cores
CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.connect.grpc.binding.address": HOST,
    "spark.connect.grpc.binding.port": str(PORT),
    "spark.sql.execution.interruptOnCancel": "true",  # a cancel kills the running tasks
}


def _up() -> bool:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
        return True
    except OSError:
        return False


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@contextlib.contextmanager
def spark_server(wait: float = 120.0) -> Iterator[str]:
    """The URL of a running Spark Connect server, started here if none answers."""
    if _up():
        yield URL
        return
    if shutil.which("java") is None:
        raise RuntimeError("Java is not installed (apt-get install openjdk-17-jre-headless)")
    home = spark_home()
    work = Path(tempfile.mkdtemp(prefix="qr-spark-"))
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(work / "logs"),
           "SPARK_PID_DIR": str(work), "SPARK_NO_DAEMONIZE": ""}
    env.pop("SPARK_NO_DAEMONIZE")
    conf = {**CONF, "spark.sql.warehouse.dir": str(work / "warehouse")}
    args = ["bash", str(home / "sbin" / "start-connect-server.sh")]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    subprocess.run(args, env=env, check=True, capture_output=True, cwd=work)
    try:
        deadline = time.monotonic() + wait
        while not _up():
            if time.monotonic() > deadline:
                logs = "".join(p.read_text()[-2000:] for p in (work / "logs").glob("*.out"))
                raise RuntimeError(f"Spark Connect did not start in {wait:.0f} s:\n{logs}")
            time.sleep(0.5)
        yield URL
    finally:
        subprocess.run(["bash", str(home / "sbin" / "stop-connect-server.sh")], env=env,
                       capture_output=True, cwd=work, check=False)
        shutil.rmtree(work, ignore_errors=True)
