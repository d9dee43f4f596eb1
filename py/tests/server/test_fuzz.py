"""A seeded fuzz of the wire: 12,000 messages at a real worker over real ZeroMQ.

Most messages are correctly signed mutants of valid requests (values swapped for
hostile ones, keys dropped or added, params nested deep, tensor tables bent, frames
added or dropped), so they reach the decoder, the validators and the handlers; the rest
carry bad signatures, truncated or flipped bytes, or random frames. The worker must
never exit, must sign and encode everything it sends, and must answer `info` at the end.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time

import msgpack
import pytest
from worker_process import WorkerProcess

from advmoe_worker import methods  # noqa: F401  (registers the worker's methods)
from advmoe_worker.server import builtin  # noqa: F401
from advmoe_worker.server.methods import METHODS

SEED = int(os.environ.get("ADVMOE_FUZZ_SEED", "20261123"))
COUNT = 12_000
TIME_LIMIT_S = 240.0  # a bound on a stuck run, not a speed target
NEST = "@@nest@@"

# Cheap requests to start from: none of them builds a model or a data set when valid.
CORPUS = [
    ("info", {}, {}),
    ("echo", {"note": "x"}, {"x": ("float32", [2, 3])}),
    ("echo", {}, {"a": ("uint8", [5]), "b": ("int64", [1, 1])}),
    ("transfer.sink", {}, {"a": ("uint8", [16])}),
    ("transfer.source", {"bytes": 16}, {}),
    ("object.list", {"kind": "model"}, {}),
    ("object.describe", {"handle": "model:1"}, {}),
    ("object.delete", {"handle": "trainer:9"}, {}),
    ("sleep", {"seconds": 0, "tick": 0.01}, {}),
    ("trainer.set", {"handle": "trainer:1", "changes": {"lr": 0.1, "attack": {"steps": 2}}}, {}),
    ("trainer.step", {"handle": "trainer:1", "phase": "router"}, {}),
    ("model.describe", {"handle": "model:1"}, {}),
    ("model.predict", {"handle": "model:1"}, {"x": ("float32", [1, 3, 8, 8])}),
    ("data.describe", {"handle": "data:1"}, {}),
    ("evaluate", {"model": "model:1", "data": "data:1", "spec": {"attacks": [{"kind": "pgd"}]}}, {}),
    ("model.load", {"path": "missing.pt"}, {}),
]
# Methods a mutant may switch to; `shutdown` would end the worker by design.
TARGETS = [m for m in METHODS if m != "shutdown"] + ["no.such.method", "", "info\x00"]
NASTY = [
    0,
    -1,
    1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    math.nan,
    math.inf,
    -0.0,
    1e308,
    "",
    "x" * 5000,
    "../../../etc/passwd",
    "model:1",
    None,
    True,
    b"\x00\xff",
    [],
    {},
    [[[[]]]],
    {"": None},
]
DTYPES = ["float32", "float64", "int64", "uint8", "bool", "bfloat16", "complex64", 7, None]
SHAPES = [[0, 2**62, 2**62], [0, 2**63 - 1], [2**40, 2**40], [-1], [0] * 20, [1.5], "3", [2**31, 0], [3], []]


def paths(node, prefix=()):
    """Every (path) to a value inside maps and lists, iteratively."""
    out, stack = [], [(node, prefix)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                out.append((*at, k))
                stack.append((v, (*at, k)))
        elif isinstance(item, list):
            for i, v in enumerate(item):
                out.append((*at, i))
                stack.append((v, (*at, i)))
    return out


def parent(root, path):
    for step in path[:-1]:
        root = root[step]
    return root


def tensor_frame(dtype: str, shape: list[int], rng: random.Random) -> bytes:
    size = {"float32": 4, "float64": 8, "int64": 8, "uint8": 1, "bfloat16": 2}[dtype] * math.prod(shape)
    return rng.randbytes(size)


def mutant(rng: random.Random, client) -> list[bytes]:
    """One message: a mutated request, signed or not, as frames after the identity."""
    method, params, tensors = rng.choice(CORPUS)
    header = client.header("request", rng.randrange(1, 2**31), method=method, params=copy.deepcopy(params))
    # A session per message: a mutant that moves `seq` to 2**63 - 1 would otherwise make
    # every later message a replay.
    header["session"], header["seq"] = f"fuzz-{rng.getrandbits(48):012x}", 1
    frames: list[bytes] = []
    if tensors:
        table = {}
        for name, (dtype, shape) in tensors.items():
            table[name] = {"dtype": dtype, "shape": list(shape), "frame": len(frames) + 2}
            frames.append(tensor_frame(dtype, shape, rng))
        header["tensors"] = table
    deep = None
    for _ in range(rng.choice([0, 1, 1, 2, 3, 5])):
        op = rng.randrange(9)
        targets = paths(header)
        path = rng.choice(targets)
        holder = parent(header, path)
        if op <= 2:
            holder[path[-1]] = copy.deepcopy(rng.choice(NASTY))
        elif op == 3 and isinstance(holder, dict):
            del holder[path[-1]]
        elif op == 4:
            target = holder[path[-1]] if isinstance(holder[path[-1]], dict) else holder
            if isinstance(target, dict):
                target[rng.choice(["sconds", "eps", "spec", "x" * 40, "handle"])] = copy.deepcopy(
                    rng.choice(NASTY)
                )
        elif op == 5:
            holder[path[-1]] = [holder[path[-1]]] if rng.random() < 0.5 else {"k": holder[path[-1]]}
        elif op == 6 and deep is None:
            holder[path[-1]] = NEST
            deep = rng.choice([5, 31, 33, 200, 1000, 1023, 1500])
        elif op == 7:
            header["method"] = rng.choice(TARGETS)
        elif op == 8 and "tensors" in header and isinstance(header["tensors"], dict) and header["tensors"]:
            entry = header["tensors"][rng.choice(list(header["tensors"]))]
            if isinstance(entry, dict):
                field = rng.choice(["dtype", "shape", "frame"])
                entry[field] = {
                    "dtype": lambda: rng.choice(DTYPES),
                    "shape": lambda: copy.deepcopy(rng.choice(SHAPES)),
                    "frame": lambda: rng.choice([0, 1, 2, 3, 99, -1, 2**63 - 1, "2"]),
                }[field]()
    if rng.random() < 0.1 and frames:
        frames.pop(rng.randrange(len(frames)))
    if rng.random() < 0.05:
        frames.append(rng.randbytes(rng.randrange(64)))
    try:
        raw = msgpack.packb(header, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        raw = msgpack.packb(client.header("request", 1, method="info", params={}))
    if deep is not None:
        raw = raw.replace(msgpack.packb(NEST), b"\x91" * deep + b"\xc0", 1)
    roll = rng.random()
    if roll < 0.08:  # flipped bytes, re-signed: reaches the msgpack decoder
        raw = bytearray(raw)
        for _ in range(rng.randrange(1, 5)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        raw = bytes(raw)
    elif roll < 0.12:  # truncated, re-signed
        raw = raw[: rng.randrange(len(raw))]
    body = [raw, *frames]
    roll = rng.random()
    if roll < 0.75:
        return [client.signer.sign(body), *body]
    if roll < 0.82:
        return [client.signer.sign(body, full=True), *body]
    if roll < 0.9:  # a signature with one bit flipped
        sig = bytearray(client.signer.sign(body))
        sig[rng.randrange(len(sig))] ^= 1 << rng.randrange(8)
        return [bytes(sig), *body]
    if roll < 0.95:  # no signature frame at all
        return body
    return [rng.randbytes(rng.randrange(40)) for _ in range(rng.randrange(1, 5))]


@pytest.fixture
def worker(tmp_path):
    w = WorkerProcess(tmp_path, "--max-message-bytes", str(1 << 20))
    yield w
    w.close()


def test_twelve_thousand_hostile_messages_never_end_the_worker(worker):
    rng = random.Random(SEED)
    client = worker.client(RCVHWM=0)
    kinds: dict[str, int] = {}
    errors: dict[str, int] = {}
    start = time.monotonic()

    internal: set[str] = set()

    def take(message) -> None:
        kinds[message.kind] = kinds.get(message.kind, 0) + 1
        if message.kind == "error":
            code = message.header["error"]["code"]
            errors[code] = errors.get(code, 0) + 1
            if code == "internal":
                internal.add(message.header["error"]["message"][:200])

    def drain() -> None:
        while client.sock.poll(0):
            take(client.recv(0))  # asserts the worker signed it and it decodes

    try:
        for i in range(COUNT):
            client.send_raw(mutant(rng, client))
            drain()
            if i % 500 == 0:
                assert worker.proc.poll() is None, f"the worker exited after {i} messages (seed {SEED})"
                assert time.monotonic() - start < TIME_LIMIT_S, f"the fuzz passed its time bound at {i}"
        # On the same connection, so `info` is read after every mutant.
        final = 2**45  # no mutant carries this id
        client.request(final, "info")
        while (info := client.recv(TIME_LIMIT_S)).id != final or info.kind not in ("reply", "error"):
            take(info)
    finally:
        client.close()
    assert worker.proc.poll() is None, f"the worker exited (seed {SEED})"
    assert info.kind == "reply"
    stats = info.header["result"]["stats"]
    assert stats["received"] >= COUNT
    # The mix reached every stage: signature checks, the decoder, the validators, handlers.
    assert stats["dropped_unsigned"] > COUNT // 20
    assert stats["bad_messages"] > COUNT // 20
    assert errors.get("invalid_spec", 0) > COUNT // 50
    assert errors.get("not_found", 0) > 0
    assert errors.get("bad_tensor", 0) > 0
    assert kinds.get("reply", 0) > 0
    assert len(TARGETS) > 20
    print(
        f"seed {SEED}: {time.monotonic() - start:.1f} s, {kinds}, errors {errors}, stats {stats}, internal {internal}"
    )
