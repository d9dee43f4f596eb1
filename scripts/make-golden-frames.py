"""Writes test/fixtures/golden-frames.json: signed messages that both codecs must decode.

Run with the project venv: `.venv/bin/python scripts/make-golden-frames.py`.
"""

import json
import sys
from pathlib import Path

import torch

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "py"))
from advmoe_worker.protocol import Signer, encode  # noqa: E402

KEY = bytes(range(32))
BASE = {"v": 1, "session": "0123456789abcdef", "ts": 1767225600000.0}


def message(name, header, tensors=None, full=False):
    frames = encode({**BASE, **header}, tensors)
    signature = Signer(KEY).sign(frames, full)
    expected = {
        k: [v.dtype.__repr__().split(".")[1], list(v.shape), v.flatten().tolist()]
        for k, v in (tensors or {}).items()
    }
    return {
        "name": name,
        "frames": [bytes(signature).hex(), *[bytes(f).hex() for f in frames]],
        "header": {**BASE, **header},
        "tensors": {
            k: {"dtype": d, "shape": s, "values": [str(x) if d == "int64" else x for x in vals]}
            for k, (d, s, vals) in expected.items()
        },
    }


cases = [
    message(
        "request without tensors", {"kind": "request", "id": 1, "seq": 1, "method": "info", "params": {}}
    ),
    message(
        "request with every dtype",
        {
            "kind": "request",
            "id": 2,
            "seq": 2,
            "method": "echo",
            "params": {"note": "ß", "big": 2**40, "neg": -3, "f": 0.5, "none": None, "list": [1, 2.5, "x"]},
        },
        {
            "f32": torch.tensor([[1.5, -2.0], [3.25, 0.0]], dtype=torch.float32),
            "f64": torch.tensor([1e-300, -1.0], dtype=torch.float64),
            "f16": torch.tensor([0.5, -1.0, 65504.0], dtype=torch.float16),
            "bf16": torch.tensor([1.0, -2.0], dtype=torch.bfloat16),
            "i64": torch.tensor([-(2**62), 2**40, 7], dtype=torch.int64),
            "i32": torch.tensor([-7, 2**31 - 1], dtype=torch.int32),
            "i16": torch.tensor([-300, 300], dtype=torch.int16),
            "i8": torch.tensor([-128, 127], dtype=torch.int8),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "b": torch.tensor([True, False, True]),
            "empty": torch.zeros((0, 3), dtype=torch.float32),
        },
    ),
    message(
        "reply with full mac",
        {"kind": "reply", "id": 2, "seq": 3, "result": {"ok": True}},
        {"y": torch.arange(4, dtype=torch.float32)},
        full=True,
    ),
    message("event", {"kind": "event", "id": 5, "seq": 4, "event": "progress", "data": {"done": 0.25}}),
    message(
        "error",
        {
            "kind": "error",
            "id": 6,
            "seq": 5,
            "error": {
                "code": "invalid_spec",
                "message": "eps: must be >= 0",
                "details": {"path": "eps", "rule": "minimum"},
            },
        },
    ),
    message("heartbeat", {"kind": "heartbeat", "id": None, "seq": 6}),
]
out = root / "test" / "fixtures" / "golden-frames.json"
out.write_text(json.dumps({"key": KEY.hex(), "messages": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} messages to {out}")
