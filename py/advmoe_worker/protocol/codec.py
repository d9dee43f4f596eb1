"""Pure encode/decode of protocol messages (no sockets, no signatures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import torch

from ..errors import BadMessageError, BadTensorError, UnsupportedVersionError
from .limits import MAX_TENSORS, check_structure, unpack_limits
from .shm import ReplySegments, SharedMemory
from .tensors import check_entry, tensor_from_frame, tensor_to_frame

PROTOCOL_VERSION = 1
KINDS = ("request", "reply", "event", "error", "cancel", "heartbeat")
MAX_HEADER_BYTES = 16 << 20
_UNPACK_OPTIONS = {"raw": False, "strict_map_key": True, **unpack_limits(MAX_HEADER_BYTES)}


@dataclass
class Message:
    """A decoded message; `tensors` share memory with the received frames."""

    kind: str
    id: int | None
    session: str
    seq: int
    ts: float
    header: dict[str, Any]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def method(self) -> str | None:
        return self.header.get("method")

    @property
    def params(self) -> dict[str, Any]:
        return self.header.get("params") or {}


def encode(
    header: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor] | None = None,
    segments: Mapping[str, dict[str, Any]] | None = None,
) -> list[Any]:
    """Header bytes followed by one raw frame per tensor (zero-copy views).

    `segments` are table entries for tensors already written to shared memory
    (`place_in_segments`): they go in the table, not in a frame.
    """
    header = dict(header)
    frames: list[Any] = [b""]
    if tensors or segments:
        table = dict(segments or {})
        for name, t in (tensors or {}).items():
            entry, buf = tensor_to_frame(t)
            entry["frame"] = len(frames) + 1  # frame 0 on the wire is the signature
            table[name] = entry
            frames.append(buf)
        header["tensors"] = table
    frames[0] = msgpack.packb(header, use_bin_type=True)
    return frames


def decode_header(raw: Any) -> dict[str, Any]:
    """Parses and checks the header map; raises BadMessageError naming the rule."""
    return check_header(parse_header(raw))


def parse_header(raw: Any) -> dict[str, Any]:
    """The header as a map, unchecked (so errors can still quote its id)."""
    view = memoryview(raw)
    if view.nbytes > MAX_HEADER_BYTES:
        raise BadMessageError(f"header is {view.nbytes} bytes, the limit is {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(view, **_UNPACK_OPTIONS)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise BadMessageError(f"header is not valid msgpack: {type(exc).__name__} {exc}"[:300]) from None
    if not isinstance(header, dict):
        raise BadMessageError("header must be a msgpack map")
    return header


def check_header(header: dict[str, Any]) -> dict[str, Any]:
    """Checks bounds, version, kind and id; raises BadMessageError or UnsupportedVersionError."""
    check_structure(header)
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(
            f"protocol version {version!r} is not supported; this worker speaks {PROTOCOL_VERSION}",
            {"supported": [PROTOCOL_VERSION], "received": version},
        )
    if header.get("kind") not in KINDS:
        raise BadMessageError(f"header.kind must be one of {list(KINDS)}, got {header.get('kind')!r}")
    msg_id = header.get("id")
    if msg_id is not None and (not isinstance(msg_id, int) or isinstance(msg_id, bool)):
        raise BadMessageError(f"header.id must be an integer or nil, got {msg_id!r}")
    return header


def place_in_segments(
    tensors: Mapping[str, torch.Tensor], shm: SharedMemory, how: ReplySegments
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Writes the tensors of at least `how.min_bytes` to segments: (the rest, their entries)."""
    rest: dict[str, torch.Tensor] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name, t in tensors.items():
        if t.numel() * t.element_size() < how.min_bytes:
            rest[name] = t
            continue
        entry, buf = tensor_to_frame(t)
        entry["shm"] = shm.write(buf, how.mac)
        entries[name] = entry
    return rest, entries


def decode(
    frames: Sequence[Any], header: dict[str, Any] | None = None, shm: SharedMemory | None = None
) -> Message:
    """Decodes [header, tensor frames...] (signature already stripped and checked).

    A table entry with `shm` instead of `frame` names a shared-memory segment, read
    through `shm`; without one it is refused.
    """
    if not frames:
        raise BadMessageError("message has no header frame")
    if header is None:
        header = decode_header(frames[0])
    table = header.get("tensors") or {}
    if not isinstance(table, dict):
        raise BadTensorError("header.tensors must be a map of name -> {dtype, shape, frame}")
    if len(table) > MAX_TENSORS:
        raise BadTensorError(
            f"header.tensors names {len(table)} tensors, the limit is {MAX_TENSORS}",
            {"rule": "max_tensors", "limit": MAX_TENSORS},
        )
    used: set[int] = set()
    tensors = {}
    for name, entry in table.items():
        if isinstance(entry, dict) and "shm" in entry and "frame" not in entry:
            tensors[name] = _from_segment(name, entry, shm)
            continue
        index = entry.get("frame") if isinstance(entry, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 2 <= index <= len(frames):
            raise BadTensorError(
                f"tensor {name!r}: frame index {index!r} is not one of the {len(frames) - 1} tensor frames",
                {"tensor": name, "frame": index, "frames": len(frames) + 1},
            )
        if index in used:
            raise BadTensorError(f"tensor {name!r}: frame {index} is used twice", {"tensor": name})
        used.add(index)
        tensors[name] = tensor_from_frame(name, entry, memoryview(frames[index - 1]))
    if len(used) != len(frames) - 1:
        raise BadTensorError(
            f"message has {len(frames) - 1} tensor frames but the table names {len(used)}",
            {"frames": len(frames) - 1, "tensors": len(used)},
        )
    return Message(
        kind=header["kind"],
        id=header.get("id"),
        session=header.get("session", ""),
        seq=header.get("seq", 0),
        ts=header.get("ts", 0.0),
        header=header,
        tensors=tensors,
    )


def _from_segment(name: str, entry: dict[str, Any], shm: SharedMemory | None) -> torch.Tensor:
    if shm is None:
        raise BadTensorError(
            f"tensor {name!r} names a shared-memory segment, but this worker has no shared-memory "
            "folder (it was not started with --shm-dir): send tensors as frames",
            {"tensor": name, "rule": "shm_unavailable"},
        )
    dtype, shape, expected = check_entry(name, entry)
    # A mapping starts on a page: aligned for every dtype.
    return shm.open(name, entry["shm"], expected).view(dtype).view(shape)
