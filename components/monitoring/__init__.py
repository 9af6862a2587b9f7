"""Monitoring: kube-prometheus-stack and what it scrapes (``stack.Monitoring``, the chart's values in ``chart``), the
alert packs and recording rules (``rules``), the Grafana dashboards (``dashboards``), Alertmanager routing
(``alerting``), PromQL building blocks (``promql``).

Nothing is imported here: the engines (``components.serving.engines``) use ``promql`` and must load without Pulumi.
"""
