"""The inline worker: served from a thread of the host interpreter, its objects reachable live."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from advmoe_worker import inline

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "server"))
from test_loop import KEY, Client  # noqa: E402


@pytest.fixture
def endpoint(tmp_path):
    ready = json.loads(inline.start("tcp://127.0.0.1:0", KEY.hex(), str(tmp_path), "cpu", 1))
    assert ready["pid"] == os.getpid() and ready["executable"] == sys.executable
    yield ready["endpoint"]
    assert inline.stop(ready["endpoint"])


def call(client: Client, id: int, method: str, params: dict):
    client.send("request", id, method=method, params=params)
    while True:
        message = client.recv(60_000)
        if message.header["kind"] in ("reply", "error"):
            return message.header


def test_a_handle_resolves_to_the_live_module_the_protocol_built(endpoint):
    client = Client(endpoint)
    spec = {"arch": "resnet18", "width": 0.0625, "input_size": 8, "num_classes": 3, "in_channels": 3}
    reply = call(client, 1, "model.create", {"spec": spec})
    assert reply["kind"] == "reply", reply
    module = inline.live(endpoint, reply["result"]["handle"])
    assert isinstance(module, torch.nn.Module)
    assert sum(p.numel() for p in module.parameters()) == reply["result"]["params"]["total"]


def test_an_unknown_handle_and_an_unknown_endpoint_are_refused(endpoint):
    with pytest.raises(Exception, match="model:999"):
        inline.live(endpoint, "model:999")
    with pytest.raises(KeyError):
        inline.live("tcp://127.0.0.1:1", "model:1")


def test_a_remote_address_is_refused():
    with pytest.raises(ValueError, match="loopback"):
        inline.start("tcp://0.0.0.0:0", KEY.hex(), ".")
