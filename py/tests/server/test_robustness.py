"""Requests that once killed or stalled the worker, and what must keep holding.

Every case runs against a real worker process over real ZeroMQ; after each, the module
fixture checks that the process is still alive.
"""

from __future__ import annotations

import os
import pickle
import threading

import msgpack
import pytest
import torch
import zmq
from worker_process import WorkerProcess
from zmq.utils.monitor import recv_monitor_message

from advmoe_worker.protocol.limits import MAX_DEPTH

MiB = 1 << 20
NEST = "@@nest@@"


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = WorkerProcess(tmp_path_factory.mktemp("ws"), "--max-message-bytes", str(MiB))
    yield w
    w.close()


@pytest.fixture
def client(worker):
    c = worker.client()
    yield c
    assert worker.proc.poll() is None, "the worker process exited"
    assert c.call("info").kind == "reply", "info is answered afterwards"
    c.close()


def nested_request(client, id: int, method: str, params: dict, depth: int) -> None:
    """A signed request whose params hold `depth` nested arrays where NEST stands."""
    raw = client.packed(method, params, id)
    marker = msgpack.packb(NEST)
    assert raw.count(marker) == 1
    client.send_signed([raw.replace(marker, b"\x91" * depth + b"\xc0")])


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("trainer.set", {"handle": "trainer:1", "changes": {"lr": NEST}}),
        ("model.create", {"spec": NEST}),
        ("data.create", {"spec": NEST}),
        ("evaluate", {"model": "model:1", "data": "data:1", "spec": NEST}),
        ("echo", {"note": NEST}),
    ],
)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000])
def test_params_nested_too_deep_are_a_bad_message(client, method, params, depth):
    nested_request(client, 7, method, params, depth)
    # Past msgpack's own stack (1,024 levels) the header cannot be read, nor its id.
    reply = client.answer(7 if depth < 1024 else None)
    assert reply.kind == "error"
    assert reply.header["error"]["code"] == "bad_message"


def test_nesting_within_the_limit_reaches_the_schema(client):
    nested_request(client, 8, "trainer.set", {"handle": "trainer:1", "changes": {"lr": NEST}}, 20)
    assert client.answer(8).header["error"]["code"] == "invalid_spec"


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_an_integer_outside_int64_is_a_bad_message(client, value):
    reply = client.call("trainer.set", {"handle": "trainer:1", "changes": {"lr": value}})
    assert reply.header["error"]["code"] == "bad_message"
    assert reply.header["error"]["details"]["rule"] == "int64"


def tensor_request(client, id: int, shape: list[int], frame: bytes, dtype: str = "float32"):
    header = client.header(
        "request", id, method="echo", params={}, tensors={"x": {"dtype": dtype, "shape": shape, "frame": 2}}
    )
    client.send_signed([msgpack.packb(header), frame])
    return client.answer(id)


@pytest.mark.parametrize(
    "shape",
    [
        [0, 2**62, 2**62],  # strides overflow, then abort
        [0, 2**63 - 1],  # torch.empty raised TypeError
        [2**40, 2**40],  # its byte count was an int no reply could carry
        [0] * 17,
    ],
)
def test_tensor_shapes_that_overflow_are_a_bad_tensor(client, shape):
    reply = tensor_request(client, 9, shape, b"")
    assert reply.kind == "error"
    assert reply.header["error"]["code"] == "bad_tensor"
    assert reply.header["error"]["details"]["rule"] == "shape_bounds"


def test_a_shape_dimension_beyond_int64_is_a_bad_message(client):
    reply = tensor_request(client, 10, [0, 2**63], b"")
    assert reply.header["error"]["code"] == "bad_message"


def test_an_empty_tensor_with_a_sane_shape_still_echoes(client):
    reply = tensor_request(client, 11, [0, 3], b"")
    assert reply.kind == "reply"
    assert reply.tensors["x"].shape == (0, 3)


def test_transfer_source_over_the_message_limit_is_too_large(client):
    reply = client.call("transfer.source", {"bytes": 2**31})
    assert reply.header["error"]["code"] == "too_large"
    assert reply.header["error"]["details"]["path"] == "bytes"
    small = client.call("transfer.source", {"bytes": 1024})
    assert small.tensors["data"].numel() == 1024


def test_unsigned_frames_past_the_size_limit_are_let_go_and_counted(client):
    before = client.call("info").header["result"]["stats"]
    header = msgpack.packb(client.header("request", 12, method="echo", params={}))
    client.send_raw([b"x" * 33, header, *(b"\0" * (MiB // 2) for _ in range(3))])
    after = client.call("info").header["result"]["stats"]
    assert after["dropped_too_large"] == before["dropped_too_large"] + 1
    assert after["dropped_unsigned"] == before["dropped_unsigned"]


def test_a_signed_message_past_the_size_limit_is_answered_too_large(client):
    chunk = torch.zeros(MiB // 8, dtype=torch.float32)  # half a MiB each
    client.request(13, "echo", {}, {"a": chunk, "b": chunk, "c": chunk})
    reply = client.answer(13)
    assert reply.header["error"]["code"] == "too_large"
    details = reply.header["error"]["details"]
    assert details["limit"] == MiB
    assert details["bytes"] > 3 * MiB // 2  # the three tensors and the header


def test_one_frame_over_the_limit_is_refused_by_libzmq_before_it_is_held(worker, client):
    big = worker.client()
    monitor = big.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    try:
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        before = client.call("info").header["result"]["stats"]
        big.send_raw([b"x" * 33, b"\0" * (4 * MiB)])
        # The worker's libzmq closes the connection instead of delivering the frame.
        assert monitor.poll(30_000), "the worker kept the connection"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        after = client.call("info").header["result"]["stats"]
        assert after["received"] == before["received"] + 1  # only the second info
    finally:
        monitor.close(linger=0)
        big.close()


def test_a_pickled_payload_in_a_checkpoint_is_never_executed(worker, client):
    workspace = worker.proc.args[worker.proc.args.index("--workspace") + 1]
    marker = os.path.join(workspace, "pwned")

    class Payload:
        def __reduce__(self):
            return (open, (marker, "w"))

    for name in ("model.pt", "trainer.pt"):
        with open(os.path.join(workspace, name), "wb") as fh:
            pickle.dump({"format": "advmoe.model", "payload": Payload()}, fh, protocol=2)
    model = client.call("model.load", {"path": "model.pt"})
    trainer = client.call("trainer.resume", {"path": "trainer.pt"})
    assert model.header["error"]["code"] == "bad_checkpoint"
    assert trainer.header["error"]["code"] == "bad_checkpoint"
    assert not os.path.exists(marker)


def test_eight_concurrent_clients_each_get_only_their_own_1000_echoes(worker):
    failures: list[str] = []

    def run(index: int) -> None:
        c = worker.client()
        try:
            window = 50
            for start in range(0, 1000, window):
                for i in range(start, start + window):
                    data = torch.tensor([index, i], dtype=torch.int64)
                    c.request(i, "echo", {"note": f"{index}:{i}"}, {"x": data})
                for i in range(start, start + window):
                    reply = c.answer(i)
                    got = (reply.header["result"]["note"], reply.tensors["x"].tolist())
                    if got != (f"{index}:{i}", [index, i]):
                        failures.append(f"client {index} request {i} got {got}")
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert worker.proc.poll() is None


def test_an_unencodable_reply_becomes_an_internal_error(monkeypatch, tmp_path):
    from worker_process import Client

    from advmoe_worker.server import Server, ServerConfig, builtin  # noqa: F401  (registers info)
    from advmoe_worker.server.methods import METHODS, MethodEntry

    def unencodable(ctx, params, tensors):
        return {"big": 2**70}

    def crashes(ctx, params, tensors):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setitem(
        METHODS._entries, "test.unencodable", MethodEntry("test.unencodable", unencodable, True)
    )
    monkeypatch.setitem(METHODS._entries, "test.crashes", MethodEntry("test.crashes", crashes, False))
    key = b"k" * 32
    server = Server(ServerConfig(bind="tcp://127.0.0.1:0", key=key, workspace=tmp_path))
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    c = Client(server.endpoint, key)
    try:
        reply = c.call("test.unencodable")
        assert reply.kind == "error"
        assert reply.header["error"]["code"] == "internal"
        assert "OverflowError" in reply.header["error"]["details"]["type"]
        crash = c.call("test.crashes")
        assert crash.header["error"]["code"] == "internal"
        assert crash.header["error"]["details"]["type"] == "RecursionError"
        assert c.call("info").kind == "reply"
    finally:
        c.close()
        server.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
