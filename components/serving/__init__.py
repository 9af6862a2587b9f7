"""Model serving: the KServe control plane (``kserve``) and, per model, an endpoint."""

from .endpoint import ModelEndpoint
from .kserve import KServe

__all__ = ["KServe", "ModelEndpoint"]
