"""The worker's socket loop, method registry and call context."""

from .context import CallContext
from .loop import Server, ServerConfig
from .methods import METHODS, method
from .objects import ObjectRegistry

__all__ = ["METHODS", "CallContext", "ObjectRegistry", "Server", "ServerConfig", "method"]
