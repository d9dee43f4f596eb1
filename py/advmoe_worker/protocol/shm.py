"""Tensors through shared memory: a file per tensor in a private folder (docs/protocol.md).

A local client and its worker share a folder in /dev/shm that only their user can enter
(mode 0700). A tensor above the size threshold is written to a fresh file there (mode
0600, an unguessable name, created exclusively), and only its table entry travels in the
signed header: the file's name, its length, and a MAC of its bytes under a key derived
from the signing key. The receiver checks the file (a regular file of this user, private,
the announced length) and the MAC before it uses a byte, so a segment changed after it
was announced is refused.

The worker maps an incoming segment copy-on-write: the tensor views the file's pages
without a copy, and a handler that writes into it writes into its own pages. The client
that created a segment removes it once its request is answered; a segment the worker
writes is removed by the client that reads it. Whatever is left goes with the folder.
"""

from __future__ import annotations

import hashlib
import hmac
import mmap
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import BadTensorError

MACS = ("aes-256-gmac", "hmac-sha256")
NAME = re.compile(r"^[0-9a-f]{32}$")
NONCE_BYTES = 12
_KEY_LABEL = b"advmoe shared memory v1"
_CHUNK = 1 << 30  # a single os.write or MAC update stays well under 2 GiB


def derive_key(signing_key: bytes) -> bytes:
    """The MAC key for segments: separate from the signing key, derived from it."""
    return hmac.new(signing_key, _KEY_LABEL, hashlib.sha256).digest()


def check_folder(folder: Path) -> Path:
    """The folder must be a real directory of this user that nobody else can enter."""
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"shared-memory folder {folder} is not a directory")
    if info.st_uid != os.getuid():
        raise ValueError(f"shared-memory folder {folder} belongs to another user")
    if info.st_mode & 0o077:
        raise ValueError(
            f"shared-memory folder {folder} is open to other users (mode {info.st_mode & 0o777:o})"
        )
    return folder


@dataclass(frozen=True)
class ReplySegments:
    """What a request allows its replies: segments for tensors of `min_bytes` or more, under `mac`."""

    mac: str
    min_bytes: int


class SharedMemory:
    """Reads and writes segments in one private folder, checking each one's MAC."""

    def __init__(self, folder: str | os.PathLike[str], signing_key: bytes):
        self.folder = check_folder(Path(folder))
        self._key = derive_key(signing_key)

    # ---- receive ----------------------------------------------------------------------

    def open(self, name: str, ref: Any, expected: int) -> torch.Tensor:
        """The segment `ref` (a table entry's `shm`) as a flat uint8 tensor of `expected` bytes."""
        if not isinstance(ref, dict):
            raise BadTensorError(f"tensor {name!r}: shm must be a map", {"tensor": name})
        segment, mac, size = ref.get("name"), ref.get("mac"), ref.get("bytes")
        if not isinstance(segment, str) or not NAME.match(segment):
            raise BadTensorError(
                f"tensor {name!r}: shm.name must be 32 lowercase hex digits",
                {"tensor": name, "rule": "shm_name"},
            )
        if mac not in MACS:
            raise BadTensorError(
                f"tensor {name!r}: shm.mac must be one of {list(MACS)}, got {mac!r}", {"tensor": name}
            )
        if size != expected or expected == 0:
            raise BadTensorError(
                f"tensor {name!r}: shm.bytes is {size!r}, the dtype and shape need {expected}",
                {"tensor": name, "bytes": size, "expected": expected},
            )
        path = self.folder / segment
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise BadTensorError(
                f"tensor {name!r}: shared-memory segment {segment} cannot be opened ({exc.strerror})",
                {"tensor": name, "segment": segment, "rule": "shm_missing"},
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise BadTensorError(
                    f"tensor {name!r}: segment {segment} is not a private regular file of this user",
                    {"tensor": name, "segment": segment, "rule": "shm_private"},
                )
            if info.st_size != expected:
                raise BadTensorError(
                    f"tensor {name!r}: segment {segment} holds {info.st_size} bytes, the header says {expected}",
                    {"tensor": name, "segment": segment, "rule": "shm_length"},
                )
            # Copy-on-write. Not MAP_POPULATE: on a writable private mapping it copies every
            # page up front (4x the time of faulting them in as the MAC check reads them).
            view = mmap.mmap(fd, expected, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        if not hmac.compare_digest(_bytes(ref.get("tag")), self._mac(mac, _bytes(ref.get("nonce")), view)):
            view.close()
            raise BadTensorError(
                f"tensor {name!r}: segment {segment} does not match its MAC (changed after it was announced)",
                {"tensor": name, "segment": segment, "rule": "shm_mac"},
            )
        return torch.frombuffer(view, dtype=torch.uint8)

    # ---- send -------------------------------------------------------------------------

    def write(self, data: memoryview, mac: str) -> dict[str, Any]:
        """Writes `data` to a fresh segment; returns the table entry's `shm` map."""
        segment = secrets.token_hex(16)
        path = self.folder / segment
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            done = 0
            while done < data.nbytes:
                done += os.write(fd, data[done : done + _CHUNK])
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        nonce = secrets.token_bytes(NONCE_BYTES) if mac == "aes-256-gmac" else b""
        return {
            "name": segment,
            "bytes": data.nbytes,
            "mac": mac,
            "nonce": nonce,
            "tag": self._mac(mac, nonce, data),
        }

    def _mac(self, mac: str, nonce: bytes, data: Any) -> bytes:
        view = memoryview(data).cast("B")
        if mac == "hmac-sha256":
            h = hmac.new(self._key, digestmod=hashlib.sha256)
            for at in range(0, view.nbytes, _CHUNK):
                h.update(view[at : at + _CHUNK])
            return h.digest()
        if len(nonce) != NONCE_BYTES:
            return b""  # never equal to a tag: compare_digest then refuses
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        # GMAC: AES-GCM over no plaintext, the bytes as associated data; its tag is the MAC.
        gcm = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
        for at in range(0, view.nbytes, _CHUNK):
            gcm.authenticate_additional_data(view[at : at + _CHUNK])
        gcm.finalize()
        return gcm.tag


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else b""
