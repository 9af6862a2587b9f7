"""Typed stack config: ``load()`` turns the stack's ``ai-platform:*`` keys into a frozen ``PlatformConfig``."""

from .loader import ConfigError, load, secret
from .model import PlatformConfig

__all__ = ["ConfigError", "PlatformConfig", "load", "secret"]
