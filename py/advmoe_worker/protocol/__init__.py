"""Wire protocol: pure codecs for frames, headers, tensors and signatures."""

from .codec import PROTOCOL_VERSION, Message, decode, encode
from .signing import ReplayGuard, Signer
from .tensors import DTYPES, tensor_from_frame, tensor_to_frame

__all__ = [
    "DTYPES",
    "PROTOCOL_VERSION",
    "Message",
    "ReplayGuard",
    "Signer",
    "decode",
    "encode",
    "tensor_from_frame",
    "tensor_to_frame",
]
