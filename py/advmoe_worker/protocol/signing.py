"""HMAC-SHA256 message signatures and replay rejection."""

from __future__ import annotations

import hmac
import struct
import time
from collections.abc import Sequence
from typing import Any

DIGEST_BYTES = 32
SIGNATURE_BYTES = 1 + DIGEST_BYTES  # mode byte, then the digest
MAC_MODES = (b"h"[0], b"f"[0])
_MODE_HEADER, _MODE_FULL = MAC_MODES
_MODE_PREFIX = {_MODE_HEADER: b"h", _MODE_FULL: b"f"}
_U64 = struct.Struct("<Q")


class Signer:
    """Signs and verifies frame lists with one shared key.

    The MAC covers the header, and each tensor frame's length; with mode "f" it also
    covers the tensor bytes (docs/protocol.md, Signing).
    """

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("signing key must be at least 16 bytes")
        self._key = key
        # Keyed once: copying it skips the key schedule that `hmac.new` redoes per call.
        self._keyed = hmac.new(key, digestmod="sha256")

    def sign(self, frames: Sequence[Any], full: bool = False) -> bytes:
        """Signature frame for `frames` (header, then tensor frames)."""
        return self._sign(frames, _MODE_FULL if full else _MODE_HEADER)

    def verify(
        self, signature: Any, frames: Sequence[Any], require_full: bool = False, lengths_only: bool = False
    ) -> bool:
        """True when `signature` matches. With `lengths_only`, tensor frames may be given
        as their byte counts (ints): only an `h` signature can then be checked."""
        sig = bytes(signature)
        if len(sig) != SIGNATURE_BYTES or sig[0] not in MAC_MODES:
            return False
        if require_full and sig[0] != _MODE_FULL:
            return False
        if lengths_only and sig[0] != _MODE_HEADER:
            return False
        return hmac.compare_digest(sig, self._sign(frames, sig[0]))

    def _sign(self, frames: Sequence[Any], mode: int) -> bytes:
        prefix = _MODE_PREFIX[mode]
        if mode == _MODE_HEADER:
            # Only the header's bytes and the lengths are covered: small enough to join
            # and hash in one update of the keyed copy (half the cost of hmac.digest,
            # which sets the key up again on every call).
            parts = [prefix]
            for i, frame in enumerate(frames):
                if isinstance(frame, int):
                    parts.append(_U64.pack(frame))
                    continue
                view = frame if isinstance(frame, memoryview) else memoryview(frame)
                parts.append(_U64.pack(view.nbytes))
                if i == 0:
                    parts.append(view)
            mac = self._keyed.copy()
            mac.update(b"".join(parts))
            return prefix + mac.digest()
        mac = self._keyed.copy()
        mac.update(prefix)
        for frame in frames:
            if isinstance(frame, int):
                mac.update(_U64.pack(frame))
                continue
            view = frame if isinstance(frame, memoryview) else memoryview(frame)
            mac.update(_U64.pack(view.nbytes))
            mac.update(view)
        return prefix + mac.digest()

    def sign_text(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), "sha256").hexdigest()


class ReplayGuard:
    """Rejects messages whose (session, seq) was seen or whose clock is out of window."""

    def __init__(self, window_s: float = 300.0):
        self.window_ms = window_s * 1000.0
        self._last: dict[str, tuple[int, float]] = {}  # session -> (last seq, seen at ms)

    def accept(self, session: Any, seq: Any, ts: Any, now_ms: float | None = None) -> bool:
        if not isinstance(session, str) or not session or len(session) > 128:
            return False
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return False
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            return False
        now = time.time() * 1000.0 if now_ms is None else now_ms
        if abs(now - ts) > self.window_ms:
            return False
        last = self._last.get(session)
        if last is not None and seq <= last[0]:
            return False
        self._last[session] = (seq, now)
        if len(self._last) > 1024:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        # A forgotten session's old messages are already outside the ts window.
        stale = [s for s, (_, seen) in self._last.items() if now - seen > self.window_ms]
        for s in stale:
            del self._last[s]
