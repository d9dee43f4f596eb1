import os
from pathlib import Path

import pytest
import torch

from advmoe_worker.errors import BadTensorError
from advmoe_worker.protocol import decode, encode
from advmoe_worker.protocol.codec import place_in_segments
from advmoe_worker.protocol.shm import MACS, ReplySegments, SharedMemory, check_folder

KEY = bytes(range(32))
BASE = {"v": 1, "session": "s" * 16, "seq": 1, "ts": 0.0, "kind": "request", "id": 1}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "segments"
    path.mkdir(mode=0o700)
    return path


def shm(folder: Path) -> SharedMemory:
    return SharedMemory(folder, KEY)


def entry_for(segments: SharedMemory, t: torch.Tensor, mac: str = "aes-256-gmac") -> dict:
    _, entries = place_in_segments({"x": t}, segments, ReplySegments(mac, 64))
    return entries["x"]


@pytest.mark.parametrize("mac", MACS)
def test_a_segment_round_trips_through_the_codec(folder, mac):
    segments = shm(folder)
    x = torch.randn(32, 8)
    small = torch.arange(3)
    rest, entries = place_in_segments({"x": x, "small": small}, segments, ReplySegments(mac, 64))
    assert list(rest) == ["small"]  # under min_bytes: a frame
    frames = encode(BASE, rest, entries)
    assert len(frames) == 2  # header and the small tensor's frame
    (name,) = os.listdir(folder)
    assert (folder / name).stat().st_mode & 0o777 == 0o600
    assert len(name) == 32
    message = decode(frames, shm=segments)
    assert torch.equal(message.tensors["x"], x) and torch.equal(message.tensors["small"], small)


def test_the_worker_maps_copy_on_write(folder):
    segments = shm(folder)
    x = torch.arange(64, dtype=torch.float32)
    entry = entry_for(segments, x)
    y = decode(encode(BASE, None, {"x": entry}), shm=segments).tensors["x"]
    y[0] = 99.0  # a handler writing into its input writes its own page
    again = decode(encode({**BASE, "seq": 2}, None, {"x": entry}), shm=segments).tensors["x"]
    assert again[0] == 0.0 and y[0] == 99.0


def test_a_changed_segment_is_refused(folder):
    segments = shm(folder)
    entry = entry_for(segments, torch.zeros(64))
    path = folder / entry["shm"]["name"]
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BadTensorError, match="does not match its MAC") as info:
        decode(encode(BASE, None, {"x": entry}), shm=segments)
    assert info.value.details["rule"] == "shm_mac"


def test_a_segment_under_another_key_is_refused(folder):
    entry = entry_for(SharedMemory(folder, b"another key 1234" * 2), torch.zeros(64), "hmac-sha256")
    with pytest.raises(BadTensorError) as info:
        decode(encode(BASE, None, {"x": entry}), shm=shm(folder))
    assert info.value.details["rule"] == "shm_mac"


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda e, f: e["shm"].update(name="../" + "a" * 29), "shm_name"),
        (lambda e, f: e["shm"].update(name="f" * 32), "shm_missing"),
        (lambda e, f: os.chmod(f / e["shm"]["name"], 0o644), "shm_private"),
        (lambda e, f: os.truncate(f / e["shm"]["name"], 10), "shm_length"),
    ],
)
def test_segments_that_break_a_rule_are_refused_by_name(folder, change, rule):
    segments = shm(folder)
    entry = entry_for(segments, torch.zeros(64))
    change(entry, folder)
    with pytest.raises(BadTensorError) as info:
        decode(encode(BASE, None, {"x": entry}), shm=segments)
    assert info.value.details.get("rule") == rule


def test_a_symlinked_segment_is_refused(folder, tmp_path):
    segments = shm(folder)
    entry = entry_for(segments, torch.zeros(64))
    target = tmp_path / "elsewhere"
    os.rename(folder / entry["shm"]["name"], target)
    os.symlink(target, folder / entry["shm"]["name"])
    with pytest.raises(BadTensorError) as info:
        decode(encode(BASE, None, {"x": entry}), shm=segments)
    assert info.value.details["rule"] == "shm_missing"


def test_a_worker_without_a_folder_refuses_segments(folder):
    entry = entry_for(shm(folder), torch.zeros(64))
    with pytest.raises(BadTensorError, match="no shared-memory folder"):
        decode(encode(BASE, None, {"x": entry}))


def test_the_length_must_match_dtype_and_shape(folder):
    segments = shm(folder)
    entry = entry_for(segments, torch.zeros(64))
    entry["shape"] = [65]
    with pytest.raises(BadTensorError, match="shm.bytes"):
        decode(encode(BASE, None, {"x": entry}), shm=segments)


def test_a_folder_others_can_enter_is_refused(tmp_path):
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o755)
    os.chmod(open_folder, 0o755)
    with pytest.raises(ValueError, match="open to other users"):
        check_folder(open_folder)
    with pytest.raises(ValueError, match="not a directory"):
        check_folder(Path(__file__))
