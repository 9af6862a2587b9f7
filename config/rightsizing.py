"""Right-sized requests (``ai-platform:vpa``): the Vertical Pod Autoscaler's recommender, which recommends CPU and
memory requests for the platform's own workloads and, per endpoint (``models[].vpa``), for model servers; it changes
nothing itself (every VerticalPodAutoscaler is in ``Off`` mode: ``components.vpa``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Model, Problems

if TYPE_CHECKING:
    from .model import PlatformConfig


class Vpa(Model):
    """The VPA recommender and a VerticalPodAutoscaler in ``Off`` mode (recommendations only) for every Deployment
    and StatefulSet the platform installs."""

    enabled: bool = True
    """Install the VPA recommender (no updater, no admission controller: pods are never evicted or changed) and a
    VerticalPodAutoscaler for every platform Deployment/StatefulSet; with monitoring, the recommendations as metrics,
    the ``rightsizing`` dashboard and the ``AiPlatformRequestFarFromRecommendation`` alert. Needs the cluster's
    metrics API (metrics-server), which the recommender reads."""


def cross_checks(cfg: PlatformConfig) -> Problems:
    """An endpoint's VPA needs the recommender."""
    if cfg.vpa.enabled:
        return []
    return [
        (f"models[{index}].vpa", "a VerticalPodAutoscaler for the endpoint's model servers needs vpa.enabled")
        for index, endpoint in enumerate(cfg.models)
        if endpoint.vpa
    ]
