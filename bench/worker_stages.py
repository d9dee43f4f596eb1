"""Where a worker round trip spends its time, stage by stage, in one process.

Each stage of the worker's path for one request is timed on its own (best of several
batches, so other load on the machine inflates it least): signature check, msgpack,
header checks, params validation (three ways), the handler, the reply's encoding and
signature, the send; then the whole path for an inline `echo` through a real server
over inproc, the hand-off to the compute thread and back (queue plus inproc wake-up),
and an inline round trip while the compute thread holds the GIL in Python code.
Prints a markdown table; with `--before REF` the same stages of the worker as committed
at REF (e.g. `main`) are measured in a subprocess in the same run, side by side.
Usage: .venv/bin/python bench/worker_stages.py [--number 20000] [--before REF]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import timeit
from pathlib import Path

import msgpack
import zmq
from jsonschema import Draft202012Validator

from advmoe_worker import methods  # noqa: F401  (registers the worker's methods)
from advmoe_worker.protocol import PROTOCOL_VERSION, ReplayGuard, Signer, decode, encode
from advmoe_worker.protocol.codec import check_header, parse_header
from advmoe_worker.schema_files import load_schema_file
from advmoe_worker.server import builtin  # noqa: F401
from advmoe_worker.server.loop import Server, ServerConfig
from advmoe_worker.specs import validate_method_params

KEY = secrets.token_bytes(32)
STEP_PARAMS = {"handle": "trainer:1", "phase": "router"}


def best_us(fn, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def request(params: dict, seq: int = 1) -> list[bytes]:
    header = {
        "v": PROTOCOL_VERSION,
        "kind": "request",
        "id": seq,
        "method": "echo",
        "params": params,
        "session": "bench",
        "seq": seq,
        "ts": time.time() * 1000.0,
    }
    frames = encode(header)
    return [Signer(KEY).sign(frames), *frames]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--number", type=int, default=20000)
    p.add_argument("--before", default=None, help="a git ref whose worker is measured alongside")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    # Alternated and taken at their fastest, so a burst of load elsewhere lands on one
    # repetition of one side, not on the comparison.
    befores, afters = [], []
    for _ in range(args.repeats):
        if args.before:
            befores.append(measure_at(args.before, args.number))
        afters.append(measure(args.number))
    before = _fastest(befores) if args.before else None
    rows = _fastest(afters)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"python {sys.version.split()[0]}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")
    print(f"switch interval {sys.getswitchinterval() * 1e3:.1f} ms")
    print()
    if before is None:
        print("| worker stage | µs per message |")
        print("|---|---:|")
        for name, us in rows:
            print(f"| {name} | {us:.1f} |")
        return
    old = dict(before)
    print(f"| worker stage | {args.before} µs | this tree µs |")
    print("|---|---:|---:|")
    for name, us in rows:
        was = old.get(name)
        print(f"| {name} | {'' if was is None else f'{was:.1f}'} | {us:.1f} |")


def _fastest(runs: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    return [(name, min(dict(run)[name] for run in runs)) for name, _ in runs[0]]


def measure_at(ref: str, number: int) -> list[tuple[str, float]]:
    """This script run against the worker package and schemas as committed at `ref`."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", ref, "py/advmoe_worker", "schemas"], cwd=root, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": f"{tmp}/py", "ADVMOE_SCHEMA_DIR": f"{tmp}/schemas"}
        out = subprocess.run(
            [sys.executable, __file__, "--json", "--repeats", "1", "--number", str(number)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return [tuple(row) for row in json.loads(out.strip().splitlines()[-1])]


def measure(n: int) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []

    signer = Signer(KEY)
    sig, header_bytes = request({})
    rows.append(("verify signature (HMAC-SHA256)", best_us(lambda: signer.verify(sig, [header_bytes]), n)))
    rows.append(("msgpack unpack header", best_us(lambda: parse_header(header_bytes), n)))
    header = parse_header(header_bytes)
    guard = ReplayGuard()
    seqs = iter(range(1, 10**9))
    ts = header["ts"]
    rows.append(("replay check", best_us(lambda: guard.accept("bench", next(seqs), ts), n)))
    rows.append(("header bounds and fields", best_us(lambda: check_header(header), n)))
    rows.append(("decode (tensor table, message)", best_us(lambda: decode([header_bytes], header), n)))
    rows.append(("validate params {} (cached)", best_us(lambda: validate_method_params("echo", {}), n)))
    rows.append(
        (
            "validate echo {note} (as shipped)",
            best_us(lambda: validate_method_params("echo", {"note": "x"}), n),
        )
    )
    rows.append(
        (
            "validate trainer.step params (as shipped)",
            best_us(lambda: validate_method_params("trainer.step", STEP_PARAMS), n // 4),
        )
    )
    schema = load_schema_file("methods/trainer.step.params.json")
    js = Draft202012Validator(schema)
    rows.append(
        ("  jsonschema is_valid, validator built once", best_us(lambda: js.is_valid(STEP_PARAMS), n // 4))
    )
    try:
        import fastjsonschema

        fjs = fastjsonschema.compile(schema)
        rows.append(
            ("  fastjsonschema compiled, same params", best_us(lambda: fjs(copy.deepcopy(STEP_PARAMS)), n))
        )
    except ImportError:
        pass
    rows.append(("deepcopy of the params", best_us(lambda: copy.deepcopy(STEP_PARAMS), n)))
    reply = {
        "v": PROTOCOL_VERSION,
        "kind": "reply",
        "id": 1,
        "result": {"note": None},
        "session": "s" * 16,
        "seq": 1,
        "ts": time.time() * 1000.0,
    }
    rows.append(("msgpack pack reply", best_us(lambda: msgpack.packb(reply, use_bin_type=True), n)))
    rows.append(("encode reply (codec)", best_us(lambda: encode(reply), n)))
    out = encode(reply)
    rows.append(("sign reply", best_us(lambda: signer.sign(out), n)))

    # The whole worker path for an inline echo, without the poll: a real server on inproc.
    server = Server(ServerConfig(bind=f"inproc://bench-{secrets.token_hex(4)}", key=KEY))
    endpoint = server.bind()
    client = server._zmq.socket(zmq.DEALER)
    client.connect(endpoint)
    client.send_multipart(request({}, 1))
    time.sleep(0.1)  # inproc connect; not a measurement
    frames, _ = server._recv_message()
    identity = frames[0].bytes
    msgs = [request({}, i) for i in range(2, n + 2)]
    raw = [[zmq.Frame(f) for f in m] for m in msgs]
    it = iter(raw)

    def whole() -> None:
        server._on_frames(identity, next(it), False)
        server._flush_outbox()

    t = time.perf_counter()
    for _ in range(n):
        whole()
    rows.append(("whole inline echo path (verify .. send), no poll", (time.perf_counter() - t) / n * 1e6))
    while client.poll(0):
        client.recv_multipart()

    # Hand-off to the compute thread and back: a queue, then the inproc wake-up and poll.
    worker = threading.Thread(target=server._compute_loop, daemon=True)
    worker.start()
    poller = zmq.Poller()
    poller.register(server._wake_rx, zmq.POLLIN)
    handoff = []
    for _ in range(min(n, 3000)):
        t = time.perf_counter()
        server._outbox.clear()
        server._jobs.put(_NoopJob)
        poller.poll(1000)
        while server._wake_rx.poll(0):
            server._wake_rx.recv()
        handoff.append(time.perf_counter() - t)
    handoff.sort()
    rows.append(("hand-off to compute thread and back (p50)", handoff[len(handoff) // 2] * 1e6))

    # The same hand-off while a third thread runs pure Python (as a training loop's
    # Python between torch calls does): each side waits for the GIL's switch interval.
    spinning = True

    def spin() -> None:
        while spinning:
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    contended = []
    for _ in range(200):
        t = time.perf_counter()
        server._outbox.clear()
        server._jobs.put(_NoopJob)
        poller.poll(1000)
        while server._wake_rx.poll(0):
            server._wake_rx.recv()
        contended.append(time.perf_counter() - t)
    spinning = False
    spinner.join()
    contended.sort()
    rows.append(("  the same while a Python thread spins (p50)", contended[len(contended) // 2] * 1e6))
    server.stopping = True
    server._jobs.put(None)
    worker.join(5)
    return rows


class _NoopCtx:
    identity = b"x"
    request_id = 1
    method = "echo"

    def check_cancelled(self) -> None:
        pass


class _NoopJob:
    """A job whose handler is echo's; the compute thread answers through the outbox."""

    ctx = _NoopCtx()
    params: dict = {}
    tensors: dict = {}


if __name__ == "__main__":
    main()
