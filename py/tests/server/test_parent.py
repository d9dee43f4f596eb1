"""The worker ends when its launcher's end of the stdin pipe closes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from advmoe_worker.server.parent import remove_ipc_folder, watch_parent


class FakeServer:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()


def test_end_of_file_on_the_pipe_stops_the_server():
    read_end, write_end = os.pipe()
    server = FakeServer("tcp://127.0.0.1:1")
    watch_parent(server, fd=read_end, grace_s=60)
    os.write(write_end, b"bytes on the pipe are not a close")
    assert not server.stopped.wait(0.2)
    os.close(write_end)
    assert server.stopped.wait(5)
    os.close(read_end)


def test_removes_an_ipc_socket_and_its_folder_only_when_the_folder_is_then_empty(tmp_path: Path):
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "worker.sock").write_bytes(b"")
    remove_ipc_folder(f"ipc://{alone / 'worker.sock'}")
    assert not alone.exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "worker.sock").write_bytes(b"")
    (shared / "other").write_bytes(b"kept")
    remove_ipc_folder(f"ipc://{shared / 'worker.sock'}")
    assert sorted(p.name for p in shared.iterdir()) == ["other"]
    remove_ipc_folder("tcp://127.0.0.1:5555")  # nothing to remove


def test_a_real_worker_exits_when_its_stdin_closes(tmp_path: Path, repo_root: Path):
    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700)
    endpoint = f"ipc://{folder / 'worker.sock'}"
    env = {**os.environ, "ADVMOE_KEY": "11" * 32, "PYTHONPATH": str(repo_root / "py")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "advmoe_worker", "--bind", endpoint, "--watch-parent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout.readline().startswith(b"ADVMOE_READY ")
        started = time.monotonic()
        proc.stdin.close()  # what the kernel does when the launcher dies
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        assert not folder.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
