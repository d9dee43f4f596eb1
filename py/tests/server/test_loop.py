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
    def __init__(self, endpoint: str, identity: bytes | None = None):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if identity is not None:
            self.sock.setsockopt(zmq.ROUTING_ID, identity)
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


def _collect(client: Client, ids: set[int]) -> dict[int, list]:
    """Every message for `ids` until each has its reply, per id in arrival order."""
    got: dict[int, list] = {i: [] for i in ids}
    left = set(ids)
    while left:
        msg = client.recv()
        assert msg.kind in ("event", "reply"), msg.header
        got[msg.id].append(msg)
        if msg.kind == "reply":
            left.discard(msg.id)
    return got


def test_idle_and_busy_turns_lose_no_reply(server):
    """Inline calls (the idle path, a receive on the ROUTER alone) and compute-thread calls
    (the busy path, polling the wake socket too), one at a time, then all in flight."""
    client = Client(server.endpoint)
    for i in range(0, 600, 3):
        client.send("request", i, method="echo", params={"note": str(i)})
        assert _collect(client, {i})[i][-1].header["result"] == {"note": str(i)}
        client.send("request", i + 1, method="sleep", params={"seconds": 0})
        assert _collect(client, {i + 1})[i + 1][-1].header["result"]["ticks"] == 0
        client.send("request", i + 2, method="sleep", params={"seconds": 0.002, "tick": 0.001})
        (*events, reply) = _collect(client, {i + 2})[i + 2]
        assert events and all(e.kind == "event" and e.header["event"] == "progress" for e in events)
        assert reply.header["result"]["ticks"] == len(events)

    # Pipelined: more requests in flight than the wake socket's queue holds.
    ids = range(1000, 4000)
    for i in ids:
        if i % 2:
            client.send("request", i, method="echo", params={"note": str(i)})
        else:
            client.send("request", i, method="sleep", params={"seconds": 0.001 if i % 50 == 0 else 0})
    got = _collect(client, set(ids))
    for i in ids:
        *events, reply = got[i]
        assert reply.kind == "reply" and all(e.kind == "event" for e in events)
        if i % 2:
            assert reply.header["result"] == {"note": str(i)}
        else:
            assert reply.header["result"]["ticks"] == len(events)
    client.send("heartbeat", None)
    assert client.recv().kind == "heartbeat"
    assert server._queued == server._finished


def test_a_message_queued_from_another_thread_while_idle_still_goes_out(server):
    """Not a path the worker takes (only a running job's thread sends besides the socket
    thread), but no message may be lost to it: the idle wait times out and sends it."""
    client = Client(server.endpoint, identity=b"peer-1")
    client.send("request", 1, method="echo", params={"note": "x"})
    assert client.recv().kind == "reply"  # connected, and the loop idle
    stray = threading.Thread(target=server.send, args=(b"peer-1", {"kind": "heartbeat", "id": 7}))
    stray.start()
    stray.join()
    msg = client.recv()
    assert (msg.kind, msg.id) == ("heartbeat", 7)


def test_stop_ends_an_idle_loop(tmp_path):
    srv = Server(ServerConfig(bind="tcp://127.0.0.1:0", key=KEY, workspace=tmp_path))
    srv.bind()
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    client = Client(srv.endpoint)
    client.send("request", 1, method="sleep", params={"seconds": 0})
    assert client.recv().kind == "reply"
    client.send("request", 2, method="echo", params={"note": "idle"})
    assert client.recv().kind == "reply"  # nothing queued: the loop waits on the ROUTER alone
    srv.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_no_reply_is_dropped_while_a_client_is_slow_to_read(server):
    # A client that sends its whole window before reading: its replies pile up in the
    # worker's queue to it. ZeroMQ's ROUTER drops what goes over a queue's high-water mark
    # without a word, which would leave those calls unanswered for ever.
    client = Client(server.endpoint)
    client.sock.setsockopt(zmq.RCVHWM, 1)
    note = "n" * 2000
    total = 3000
    for i in range(1, total + 1):
        client.send("request", i, method="echo", params={"note": note})
    ids = set()
    for _ in range(total):
        message = client.recv(timeout_ms=20_000)
        assert message.kind == "reply" and message.header["result"]["note"] == note
        ids.add(message.id)
    assert ids == set(range(1, total + 1))
