"""The worker's socket loop, method registry and call context."""

from .context import CallContext
from .methods import METHODS, method
from .objects import ObjectRegistry
from .loop import Server, ServerConfig

__all__ = ["METHODS", "CallContext", "ObjectRegistry", "Server", "ServerConfig", "method"]
