"""Monitoring: kube-prometheus-stack and what it scrapes (``stack``), the alert packs and recording rules
(``rules``), the Grafana dashboards (``dashboards``)."""

from . import dashboards, rules
from .stack import Monitoring

__all__ = ["Monitoring", "dashboards", "rules"]
