import hashlib
import hmac
import struct

import pytest

from advmoe_worker.protocol import ReplayGuard, Signer


def test_signatures_cover_header_and_lengths_or_every_byte():
    signer = Signer(b"k" * 32)
    frames = [b"header", b"tensor-bytes"]
    header_only, full = signer.sign(frames), signer.sign(frames, full=True)
    assert header_only[:1] == b"h" and full[:1] == b"f" and len(full) == 33
    assert signer.verify(header_only, frames) and signer.verify(full, frames)
    altered = [b"header", b"tensor-bytez"]
    assert signer.verify(header_only, altered)  # same length: mode h does not cover bytes
    assert not signer.verify(full, altered)
    assert not signer.verify(header_only, [b"header", b"tensor-bytes!"])
    assert not signer.verify(header_only, [b"Header", b"tensor-bytes"])
    assert not signer.verify(header_only, frames, require_full=True)
    assert not Signer(b"j" * 32).verify(full, frames)
    assert not signer.verify(full[:32], frames)


def test_signatures_are_the_documented_hmac_of_mode_lengths_and_bytes():
    # Written out from docs/protocol.md with the plain stdlib call, so a faster signer
    # cannot drift from the wire format the TS side and other clients compute.
    key = bytes(range(32))
    frames = [b"\x81\xa1v\x01", bytes(300), memoryview(b"xyz")]
    lengths = [struct.pack("<Q", len(f)) for f in frames]
    header_mode = b"h" + lengths[0] + frames[0] + lengths[1] + lengths[2]
    full_mode = b"f" + b"".join(n + bytes(f) for n, f in zip(lengths, frames, strict=False))
    signer = Signer(key)
    assert signer.sign(frames) == b"h" + hmac.new(key, header_mode, hashlib.sha256).digest()
    assert signer.sign(frames, full=True) == b"f" + hmac.new(key, full_mode, hashlib.sha256).digest()
    assert signer.sign([frames[0], 300, 3]) == signer.sign(frames)  # lengths stand for let-go frames


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        Signer(b"short")


def test_replay_guard_needs_increasing_sequence_numbers_in_the_window():
    guard = ReplayGuard(window_s=1.0)
    assert guard.accept("a", 1, 0.0, now_ms=0.0)
    assert not guard.accept("a", 1, 0.0, now_ms=0.0)
    assert guard.accept("a", 2, 0.0, now_ms=0.0)
    assert guard.accept("b", 1, 0.0, now_ms=0.0)
    assert not guard.accept("a", 3, 0.0, now_ms=5000.0)
    for bad in [(None, 1, 0.0), ("a", 0, 0.0), ("a", True, 0.0), ("a", 9, "x")]:
        assert not guard.accept(*bad, now_ms=0.0)
