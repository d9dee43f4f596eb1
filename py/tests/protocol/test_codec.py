import json

import msgpack
import pytest
import torch

from advmoe_worker.errors import BadMessageError, BadTensorError, UnsupportedVersionError
from advmoe_worker.protocol import DTYPES, Signer, decode, encode
from advmoe_worker.protocol.codec import decode_header

BASE = {"v": 1, "session": "s" * 16, "seq": 1, "ts": 0.0}


def sample(dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.bool:
        return torch.tensor([[True, False], [False, True]])
    if dtype.is_floating_point:
        return torch.tensor([[1.5, -2.0], [0.0, 3.25]], dtype=dtype)
    info = torch.iinfo(dtype)
    return torch.tensor([[info.min, info.max], [0, 1]], dtype=dtype)


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_every_dtype_round_trips_bit_exactly(name):
    t = sample(DTYPES[name])
    frames = encode({**BASE, "kind": "reply", "id": 1, "result": {}}, {"t": t})
    message = decode(frames)
    back = message.tensors["t"]
    assert back.dtype == t.dtype and back.shape == t.shape
    assert torch.equal(back.view(torch.uint8), t.view(torch.uint8))
    assert message.header["tensors"]["t"] == {"dtype": name, "shape": [2, 2], "frame": 2}


def test_received_tensors_share_the_frame_memory():
    buf = bytearray(torch.arange(4, dtype=torch.float32).numpy().tobytes())
    header = msgpack.packb(
        {**BASE, "kind": "request", "id": 1, "tensors": {"x": {"dtype": "float32", "shape": [4], "frame": 2}}}
    )
    x = decode([header, memoryview(buf)]).tensors["x"]
    buf[0:4] = torch.tensor([9.0]).numpy().tobytes()
    assert x[0].item() == 9.0


def test_non_contiguous_and_empty_tensors_encode():
    t = torch.arange(6, dtype=torch.int64).reshape(2, 3).t()
    e = torch.zeros((0, 5))
    msg = decode(encode({**BASE, "kind": "reply", "id": 1}, {"t": t, "e": e}))
    assert torch.equal(msg.tensors["t"], t)
    assert msg.tensors["e"].shape == (0, 5)


@pytest.mark.parametrize(
    "entry, frame, match",
    [
        ({"dtype": "float32", "shape": [4], "frame": 2}, b"\0" * 15, "needs 16"),
        ({"dtype": "complex64", "shape": [1], "frame": 2}, b"\0" * 8, "dtype"),
        ({"dtype": "float32", "shape": [-1], "frame": 2}, b"", "shape"),
        ({"dtype": "float32", "shape": [1], "frame": 7}, b"\0" * 4, "frame index"),
        ({"dtype": "float32", "shape": [1], "frame": True}, b"\0" * 4, "frame index"),
    ],
)
def test_an_inconsistent_tensor_table_is_a_bad_tensor(entry, frame, match):
    header = msgpack.packb({**BASE, "kind": "request", "id": 1, "tensors": {"x": entry}})
    with pytest.raises(BadTensorError, match=match):
        decode([header, frame])


def test_frames_not_named_in_the_table_are_refused():
    header = msgpack.packb({**BASE, "kind": "request", "id": 1})
    with pytest.raises(BadTensorError, match="1 tensor frames but the table names 0"):
        decode([header, b"\0"])


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"\xc1", BadMessageError),
        (msgpack.packb([1, 2]), BadMessageError),
        (msgpack.packb({**BASE, "v": 2, "kind": "request"}), UnsupportedVersionError),
        (msgpack.packb({**BASE, "kind": "nope"}), BadMessageError),
        (msgpack.packb({**BASE, "kind": "request", "id": "7"}), BadMessageError),
    ],
)
def test_bad_headers_raise_typed_errors(raw, error):
    with pytest.raises(error):
        decode_header(raw)


def test_golden_frames_shared_with_the_sdk_decode(repo_root):
    golden = json.loads((repo_root / "test/fixtures/golden-frames.json").read_text())
    signer = Signer(bytes.fromhex(golden["key"]))
    for case in golden["messages"]:
        signature, *frames = [bytes.fromhex(h) for h in case["frames"]]
        assert signer.verify(signature, frames), case["name"]
        message = decode(frames)
        header = {k: v for k, v in message.header.items() if k != "tensors"}
        assert header == case["header"], case["name"]
        assert sorted(message.tensors) == sorted(case["tensors"])
        for name, want in case["tensors"].items():
            got = message.tensors[name]
            assert got.dtype == DTYPES[want["dtype"]] and list(got.shape) == want["shape"]
            values = [int(v) if want["dtype"] == "int64" else v for v in want["values"]]
            assert got.flatten().tolist() == values


def test_python_reads_integers_beyond_32_bits_from_the_sdk_as_ints(repo_root):
    golden = json.loads((repo_root / "test/fixtures/golden-frames.json").read_text())
    frames = [bytes.fromhex(h) for h in golden["messages"][1]["frames"]]
    params = decode(frames[1:]).params
    assert params["big"] == 2**40 and isinstance(params["big"], int)
