"""The service mesh: the Istio control plane and ingress (``control_plane``), per-endpoint routing (``traffic``)."""

from .control_plane import Mesh
from .traffic import EndpointTraffic

__all__ = ["EndpointTraffic", "Mesh"]
