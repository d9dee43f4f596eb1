"""The socket loop: a ROUTER that verifies, decodes and dispatches; a compute thread.

The socket thread never runs model code: it answers control messages (heartbeat,
cancel, shutdown) and inline methods at once, queues the rest for the compute thread,
and signs and sends whatever the compute thread hands back. So a long training step
never delays a heartbeat or a cancel.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import zmq

from ..errors import (
    BadMessageError,
    ShuttingDownError,
    TooLargeError,
    WorkerError,
)
from ..protocol import PROTOCOL_VERSION, ReplayGuard, Signer, decode, encode
from ..protocol.codec import check_header, parse_header, place_in_segments
from ..protocol.limits import INT_MAX, INT_MIN, MAX_TENSORS, check_structure
from ..protocol.shm import MACS as SHM_MACS
from ..protocol.shm import ReplySegments, SharedMemory
from ..specs import validate_method_params
from .context import CallContext
from .methods import METHODS
from .objects import ObjectRegistry

log = logging.getLogger("advmoe_worker")

DEFAULT_MAX_MESSAGE_BYTES = 1 << 30
# Plain ints: pyzmq's flag enums cost a Python-level `__or__` on every use.
_NOBLOCK, _SNDMORE, _POLLIN = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.POLLIN)
# How long the socket thread waits for a message before it looks at `stopping` again.
_IDLE_TIMEOUT_MS = 200
# Signature, header, then at most one frame per tensor.
MAX_FRAMES = 2 + MAX_TENSORS


@dataclass
class ServerConfig:
    bind: str
    key: bytes
    workspace: Path = field(default_factory=lambda: Path(os.getcwd()).resolve())
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    require_full_mac: bool = False
    full_mac: bool = False  # sign outgoing tensor bytes too
    replay_window_s: float = 300.0
    device: str | None = None
    curve_secret_key: bytes | None = None  # Z85; set: the socket is a CURVE server
    # A private folder shared with a local client: tensors may travel as segments there
    # (protocol/shm.py). None: frames only.
    shm_dir: Path | None = None


@dataclass
class Stats:
    received: int = 0
    dropped_unsigned: int = 0
    dropped_replay: int = 0
    bad_messages: int = 0
    dropped_too_large: int = 0
    requests: int = 0
    errors: int = 0


@dataclass
class _Job:
    ctx: CallContext
    params: Any
    tensors: dict[str, torch.Tensor]


class Server:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.config.workspace = Path(os.path.realpath(config.workspace))
        self.signer = Signer(config.key)
        self.shm = SharedMemory(config.shm_dir, config.key) if config.shm_dir is not None else None
        self.replay = ReplayGuard(config.replay_window_s)
        self.stats = Stats()
        self.objects = ObjectRegistry()
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.devices: list[dict[str, Any]] = []  # filled once at start-up by the entry point
        self.session = secrets.token_hex(8)
        self.stopping = False
        self.endpoint = ""
        self._seq = 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._active: dict[tuple[bytes, int], CallContext] = {}
        self._active_lock = threading.Lock()
        self._outbox: deque[
            tuple[bytes, dict[str, Any], dict[str, torch.Tensor] | None, dict[str, dict[str, Any]] | None]
        ] = deque()
        # Jobs handed to the compute thread and jobs it has finished, each written by one
        # thread only. `_finished` moves only after a job's last message is in the outbox, so
        # once the socket thread reads them equal and THEN finds the outbox empty, the compute
        # thread has nothing more to send until the socket thread queues another job.
        self._queued = 0
        self._finished = 0
        # The thread that sends: messages queued from any other thread wake it. The main
        # thread until `serve` starts (it runs from another thread in tests and inline).
        self._socket_ident = threading.main_thread().ident
        self._zmq = zmq.Context()
        self._wake_addr = f"inproc://wake-{self.session}"
        # Under torchrun: hands each request the compute thread runs to the other ranks, and
        # returns the handler to run here (ranks.relay).
        self.relay: Callable[..., None] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def bind(self) -> str:
        """Binds the ROUTER socket; returns the real endpoint (port 0 resolved)."""
        self._sock = self._zmq.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # No send high-water mark: a ROUTER drops, without a word, whatever goes over it,
        # and a dropped reply leaves its call waiting for ever (a client that sends 1,000
        # requests before it reads lost replies). Every message queued here answers a
        # signed request or streams its events, so the queue holds what authenticated
        # clients asked for and have not read yet.
        self._sock.setsockopt(zmq.SNDHWM, 0)
        # libzmq drops any frame over the limit (and the peer that sent it) before it is
        # held, signed or not; the total over all frames is checked as they arrive.
        self._sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        if self.config.curve_secret_key is not None:
            self._sock.setsockopt(zmq.CURVE_SERVER, 1)
            self._sock.setsockopt(zmq.CURVE_SECRETKEY, self.config.curve_secret_key)
        self._sock.bind(self.config.bind)
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        # Idle, the loop blocks in this socket's own receive rather than in zmq_poll: the
        # timeout is how soon it notices `stop()`.
        self._sock.setsockopt(zmq.RCVTIMEO, _IDLE_TIMEOUT_MS)
        self._wake_rx = self._zmq.socket(zmq.PULL)
        self._wake_rx.bind(self._wake_addr)
        self._wake_lock = threading.Lock()
        self._wake_tx = self._zmq.socket(zmq.PUSH)
        self._wake_tx.connect(self._wake_addr)
        return self.endpoint

    def serve(self) -> None:
        """Runs until a `shutdown` request or `stop()`; closes the sockets on return.

        With no job on the compute thread and nothing to send, nothing but the ROUTER can
        bring work, so the loop blocks in its receive: one wait per request, as a plain
        ZeroMQ server makes. Otherwise it polls the ROUTER and the compute thread's wake
        socket together.
        """
        self._socket_ident = threading.get_ident()
        worker = threading.Thread(target=self._compute_loop, name="advmoe-compute", daemon=True)
        worker.start()
        # zmq_poll itself: zmq.Poller rebuilds its lists and a dict on every call.
        items = [(self._sock, _POLLIN), (self._wake_rx, _POLLIN)]
        outbox = self._outbox
        try:
            while True:
                # In this order: `_finished` first, then the outbox (see __init__).
                if self._finished == self._queued and not outbox and not self.stopping:
                    try:
                        frames, too_many = self._recv_message(0)  # waits up to RCVTIMEO
                    except zmq.Again:
                        continue  # idle for the timeout: look at `stopping` again
                    self._on_message(frames, too_many)
                    self._flush_outbox()
                    continue
                ready = zmq.zmq_poll(items, _IDLE_TIMEOUT_MS)  # only the sockets with events
                sock_ready = woken = False
                for sock, _ in ready:
                    if sock is self._sock:
                        sock_ready = True
                    else:
                        woken = True
                if woken:
                    while True:
                        try:
                            self._wake_rx.recv(_NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                if sock_ready:
                    for _ in range(256):  # bounded, so the outbox is never starved
                        try:
                            frames, too_many = self._recv_message()
                        except zmq.Again:
                            break
                        self._on_message(frames, too_many)
                self._flush_outbox()
                if self.stopping and not worker.is_alive():
                    self._flush_outbox()
                    break
        finally:
            self.stopping = True
            self._jobs.put(None)
            worker.join(timeout=5)
            self._flush_outbox()
            self._sock.close(linger=1000)
            self._wake_rx.close(linger=0)
            self._wake_tx.close(linger=0)
            self._zmq.term()

    def stop(self) -> None:
        """Asks the loop to stop (safe from any thread or a signal handler)."""
        self.stopping = True
        self._jobs.put(None)  # the receive or poll timeout notices `stopping` within 200 ms

    # ---- receive ----------------------------------------------------------------------

    def _recv_message(self, flags: int = _NOBLOCK) -> tuple[list[Any], bool]:
        """One message, frame by frame: ([identity, signature, header, tensors...], too many).

        Once the frames received pass the size limit, the rest are read and let go at
        once, each kept as its length alone: that is all an `h` signature covers, so a
        signed sender can still be told `too_large`. Past the frame count limit not even
        the lengths are kept.
        """
        frame = self._sock.recv(flags, copy=False)
        frames: list[Any] = [frame]
        total = 0
        too_many = False
        while frame.more:
            frame = self._sock.recv(copy=False)
            size = len(frame.buffer)
            total += size
            if len(frames) > MAX_FRAMES:
                too_many = True
            elif len(frames) > 2 and total > self.config.max_message_bytes:
                frames.append(size)
            else:
                frames.append(frame)
        return frames, too_many

    def _on_message(self, frames: list[Any], too_many: bool = False) -> None:
        identity = frames[0].bytes
        try:
            self._on_frames(identity, frames[1:], too_many)
        except Exception as exc:  # no message, however malformed, may end the loop
            log.error("a message could not be handled:\n%s", traceback.format_exc())
            self._reply_error(identity, None, internal_error(exc))

    def _on_frames(self, identity: bytes, body: list[Any], too_many: bool) -> None:
        self.stats.received += 1
        if too_many:
            self.stats.dropped_too_large += 1
            return
        if len(body) < 2:
            self.stats.dropped_unsigned += 1
            return
        signature = body[0].buffer
        rest = [f if isinstance(f, int) else f.buffer for f in body[1:]]
        let_go = int in map(type, rest)
        if not self.signer.verify(signature, rest, self.config.require_full_mac, lengths_only=let_go):
            if let_go:
                self.stats.dropped_too_large += 1
            else:
                self.stats.dropped_unsigned += 1
            log.debug("dropped a message with a missing or bad signature")
            return
        header: dict[str, Any] | None = None
        try:
            header = parse_header(rest[0])
            if not self.replay.accept(header.get("session"), header.get("seq"), header.get("ts")):
                self.stats.dropped_replay += 1
                log.debug("dropped a replayed or stale message")
                return
            check_header(header)
            size = sum(b if isinstance(b, int) else b.nbytes for b in rest)
            if size > self.config.max_message_bytes:
                self.stats.dropped_too_large += 1
                raise TooLargeError(
                    f"message is {size} bytes, the worker's limit is {self.config.max_message_bytes}",
                    {"bytes": size, "limit": self.config.max_message_bytes},
                )
            kind = header["kind"]
            if kind == "heartbeat":
                self.send(identity, {"kind": "heartbeat", "id": header.get("id")})
            elif kind == "cancel":
                self._cancel(identity, header.get("id"))
            elif kind == "request":
                self._on_request(identity, header, rest)
            else:
                raise BadMessageError(f"a worker does not accept messages of kind {kind!r}")
        except WorkerError as exc:
            if isinstance(exc, BadMessageError):
                self.stats.bad_messages += 1
            self._reply_error(identity, header.get("id") if header else None, exc)

    def _on_request(self, identity: bytes, header: dict[str, Any], frames: list[memoryview]) -> None:
        request_id = header.get("id")
        method = header.get("method")
        self.stats.requests += 1
        if self.stopping:
            raise ShuttingDownError("the worker is shutting down")
        entry = METHODS.get(method, "method")
        message = decode(frames, header, self.shm)
        params = validate_method_params(method, header.get("params"))
        ctx = CallContext(self, identity, request_id, method)
        ctx.shm = self._reply_segments(header.get("shm"))
        if entry.inline:
            self._run(ctx, entry.handler, params, message.tensors)
            return
        if request_id is not None:
            with self._active_lock:
                self._active[(identity, request_id)] = ctx
        self._queued += 1  # before the compute thread can see the job
        self._jobs.put(_Job(ctx, params, message.tensors))

    def _reply_segments(self, asked: Any) -> ReplySegments | None:
        """How reply tensors may go to segments, when the request allows it and this worker has a folder."""
        if asked is None:
            return None
        mac = asked.get("mac") if isinstance(asked, dict) else None
        min_bytes = asked.get("min_bytes") if isinstance(asked, dict) else None
        if (
            mac not in SHM_MACS
            or not isinstance(min_bytes, int)
            or isinstance(min_bytes, bool)
            or min_bytes < 1
        ):
            raise BadMessageError(
                f"header.shm must be {{mac, min_bytes}} with mac one of {list(SHM_MACS)} and min_bytes >= 1, "
                f"got {str(asked)[:200]}"
            )
        return ReplySegments(mac, min_bytes) if self.shm is not None else None

    def _cancel(self, identity: bytes, request_id: Any) -> None:
        with self._active_lock:
            ctx = self._active.get((identity, request_id))
        if ctx is not None:
            ctx.cancel()

    # ---- compute ----------------------------------------------------------------------

    def _compute_loop(self) -> None:
        # OpenMP keeps its thread count per OS thread: carry the process setting over.
        torch.set_num_threads(torch.get_num_threads())
        while True:
            job = self._jobs.get()
            if job is None:
                if self.stopping:
                    self._drain_queued()
                    if self.relay is not None:
                        self.relay(None)
                    return
                continue
            ctx = job.ctx
            try:
                if self.stopping:
                    self._reply_error(
                        ctx.identity, ctx.request_id, ShuttingDownError("the worker is shutting down")
                    )
                    continue
                ctx.check_cancelled()
                handler = METHODS.get(ctx.method).handler
                if self.relay is not None:
                    handler = self.relay(ctx.method, job.params, job.tensors, handler)
                self._run(ctx, handler, job.params, job.tensors)
            except WorkerError as exc:
                self._reply_error(ctx.identity, ctx.request_id, exc)
            except Exception as exc:  # the compute thread outlives every request
                log.error("%s failed:\n%s", ctx.method, traceback.format_exc())
                self._reply_error(ctx.identity, ctx.request_id, internal_error(exc))
            finally:
                with self._active_lock:
                    self._active.pop((ctx.identity, ctx.request_id), None)
                # Last: every message of this job is in the outbox and the socket thread woken.
                self._finished += 1

    def _drain_queued(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self._reply_error(
                    job.ctx.identity, job.ctx.request_id, ShuttingDownError("the worker is shutting down")
                )
                self._finished += 1

    def _run(self, ctx: CallContext, handler, params: Any, tensors: dict[str, torch.Tensor]) -> None:
        try:
            out = handler(ctx, params, tensors)
            result, out_tensors = out if isinstance(out, tuple) else (out, None)
            self.send(
                ctx.identity, {"kind": "reply", "id": ctx.request_id, "result": result}, out_tensors, ctx.shm
            )
        except WorkerError as exc:
            self._reply_error(ctx.identity, ctx.request_id, exc)
        except torch.cuda.OutOfMemoryError as exc:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self._reply_error(
                ctx.identity, ctx.request_id, WorkerError(str(exc).splitlines()[0], code="out_of_memory")
            )
        except Exception as exc:  # a bad request must never kill the worker
            log.error("%s failed:\n%s", ctx.method, traceback.format_exc())
            self._reply_error(ctx.identity, ctx.request_id, internal_error(exc))

    # ---- send -------------------------------------------------------------------------

    def _reply_error(self, identity: bytes, request_id: Any, exc: WorkerError) -> None:
        self.stats.errors += 1
        if not _is_id(request_id):
            request_id = None
        self.send(identity, {"kind": "error", "id": request_id, "error": _sendable(exc.to_wire())})

    def send(
        self,
        identity: bytes,
        header: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
        shm: ReplySegments | None = None,
    ) -> None:
        """Queues a message; the socket thread numbers, signs and sends it (thread-safe).

        With `shm` (the request allowed segments), large tensors are written to shared
        memory here, on the caller's thread, and only their entries are queued.

        Other threads send only within a job the compute thread runs (its events, its
        reply): the idle socket thread waits on the ROUTER alone, so a message queued from
        another thread at any other time would go out only at that wait's timeout.
        """
        segments = None
        if shm is not None and tensors and self.shm is not None:
            tensors, segments = place_in_segments(tensors, self.shm, shm)
        self._outbox.append((identity, header, tensors, segments))
        if threading.get_ident() != self._socket_ident:
            self._wake()

    def _wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_tx.send(b"", _NOBLOCK)
            except zmq.Again:  # the queue is full of wakes the socket thread has yet to read
                pass

    def _flush_outbox(self) -> None:
        while self._outbox:
            identity, header, tensors, segments = self._outbox.popleft()
            self._seq += 1
            header = {
                "v": PROTOCOL_VERSION,
                **header,
                "session": self.session,
                "seq": self._seq,
                "ts": time.time() * 1000.0,
            }
            try:
                frames = encode(header, tensors, segments)
            except Exception as exc:  # e.g. a result holding an int msgpack cannot carry
                log.error("a %s could not be encoded:\n%s", header.get("kind"), traceback.format_exc())
                frames = encode(_unencodable(header, exc))
            signature = self.signer.sign(frames, self.config.full_mac)
            try:
                # Zero-copy frames cost more than copying small ones: only tensors go
                # without. The socket's own send, not send_multipart: that one type-checks
                # every frame and builds its flags as enums, per frame.
                send = self._sock.send
                send(identity, _SNDMORE)
                send(signature, _SNDMORE)
                last = len(frames) - 1
                send(frames[0], _SNDMORE if last else 0)
                for i in range(1, last + 1):
                    send(frames[i], _SNDMORE if i < last else 0, copy=False)
            except zmq.ZMQError as exc:
                log.warning("could not send to a peer: %s", exc)


def _is_id(value: Any) -> bool:
    """An id a reply can quote: an int64 (the header's own bounds)."""
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX


MAX_ERROR_MESSAGE_CHARS = 2000


def _sendable(error: dict[str, Any]) -> dict[str, Any]:
    """An error payload within the header bounds a client checks: details quote what was
    received, which may itself be what broke them."""
    message = str(error.get("message", ""))
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[:MAX_ERROR_MESSAGE_CHARS] + "…"
    error = {**error, "message": message}
    try:
        check_structure(error)
    except BadMessageError:
        error["details"] = {"omitted": "the details broke the header bounds"}
    return error


def internal_error(exc: BaseException) -> WorkerError:
    """An `internal` error for an unexpected exception: its type and its first line."""
    first = str(exc).splitlines()[0][:500] if str(exc) else ""
    return WorkerError(f"{type(exc).__name__}: {first}", {"type": type(exc).__name__})


def _unencodable(header: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """What goes out instead of a message that cannot be encoded: only plain fields."""
    request_id = header.get("id")
    if not _is_id(request_id):
        request_id = None
    error = WorkerError(
        f"the worker could not encode its {header.get('kind')!s:.20} message: {type(exc).__name__}",
        {"type": type(exc).__name__},
    )
    return {
        "v": PROTOCOL_VERSION,
        "kind": "error",
        "id": request_id,
        "error": error.to_wire(),
        "session": header["session"],
        "seq": header["seq"],
        "ts": header["ts"],
    }


def pack_ready(server: Server, extra: dict[str, Any]) -> str:
    """The signed ready line a launcher waits for (docs/protocol.md, Ready line)."""
    payload = json.dumps(
        {"endpoint": server.endpoint, "pid": os.getpid(), "protocol": PROTOCOL_VERSION, **extra}
    )
    return f"ADVMOE_READY {payload} {server.signer.sign_text(payload)}"
