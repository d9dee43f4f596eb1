"""The socket loop over a real ZeroMQ socket, driven by a minimal Python client."""

import itertools
import threading
import time

import pytest
import zmq

from advmoe_worker.errors import ForbiddenPathError
from advmoe_worker.protocol import Signer, decode, encode
from advmoe_worker.server import (
    CallContext,
    Server,
    ServerConfig,
    builtin,  # noqa: F401  (registers the methods)
)

KEY = b"x" * 32


class Client:
    def __init__(self, endpoint: str):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.signer = Signer(KEY)
        self.seq = itertools.count(1)

    def send(self, kind: str, id: int | None, **fields) -> None:
        header = {
            "v": 1,
            "kind": kind,
            "id": id,
            "session": "py-client",
            "seq": next(self.seq),
            "ts": time.time() * 1000,
            **fields,
        }
        frames = encode(header)
        self.sock.send_multipart([self.signer.sign(frames), *frames])

    def recv(self, timeout_ms: int = 5000):
        assert self.sock.poll(timeout_ms), "no message from the worker"
        signature, *frames = self.sock.recv_multipart()
        assert self.signer.verify(signature, frames)
        return decode(frames)


@pytest.fixture
def server(tmp_path):
    srv = Server(ServerConfig(bind="tcp://127.0.0.1:0", key=KEY, workspace=tmp_path))
    srv.bind()
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_heartbeats_and_cancel_are_served_while_a_request_computes(server):
    client = Client(server.endpoint)
    client.send("request", 1, method="sleep", params={"seconds": 30, "tick": 0.02})
    first = client.recv()
    assert (first.kind, first.id, first.header["event"]) == ("event", 1, "progress")
    client.send("heartbeat", None)
    while (msg := client.recv()).kind == "event":
        pass
    assert msg.kind == "heartbeat"
    client.send("cancel", 1)
    while (msg := client.recv()).kind == "event":
        pass
    assert msg.kind == "error" and msg.id == 1 and msg.header["error"]["code"] == "cancelled"


def test_outgoing_sequence_numbers_increase_across_both_threads(server):
    client = Client(server.endpoint)
    client.send("request", 1, method="sleep", params={"seconds": 0.1, "tick": 0.01})
    for _ in range(5):
        client.send("heartbeat", None)
    seqs = []
    while True:
        msg = client.recv()
        seqs.append(msg.seq)
        if msg.kind == "reply":
            break
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_paths_outside_the_workspace_are_refused(server, tmp_path):
    ctx = CallContext(server, b"", 1, "test")
    assert ctx.resolve_path("ckpt/a.pt", "path") == tmp_path / "ckpt" / "a.pt"
    for bad in ["../escape.pt", "/etc/passwd", "ckpt/../../x"]:
        with pytest.raises(ForbiddenPathError) as info:
            ctx.resolve_path(bad, "path")
        assert info.value.details["path"] == "path"
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(ForbiddenPathError):
        ctx.resolve_path("link/x.pt", "path")
