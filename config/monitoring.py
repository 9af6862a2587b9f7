"""Monitoring (``ai-platform:monitoring``): kube-prometheus-stack, alert thresholds (platform-wide and per endpoint),
Alertmanager receivers and routing by severity."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from .base import DnsLabel, EmailAddress, HttpsUrl, Model, Problems, Quantity, valid

PrometheusDuration = Annotated[str, Field(pattern=r"^\d+(ms|s|m|h|d|w|y)$")]
Ratio = Annotated[float, Field(gt=0, le=1)]


class Alerts(Model):
    """Alert thresholds (platform-wide defaults; endpoints may override theirs under ``models[].alerts``)."""

    gpu_temperature_celsius: Annotated[float, Field(gt=0, le=120)] = 85
    """GPU temperature that warns of throttling."""
    gpu_memory_used_ratio: Ratio = 0.95
    """Framebuffer memory use near full."""
    gpu_idle_utilization_percent: Annotated[float, Field(ge=0, le=100)] = 5
    """Below this average utilisation an allocated GPU counts as wasted..."""
    gpu_idle_for: PrometheusDuration = "2h"
    """...for this long."""
    endpoint_p95_latency_seconds: Annotated[float, Field(gt=0)] = 30
    """p95 end-to-end request latency of an endpoint."""
    endpoint_ttft_p95_seconds: Annotated[float, Field(gt=0)] = 2
    """p95 time to first token (vLLM)."""
    endpoint_error_ratio: Ratio = 0.05
    """Share of failed requests."""
    vllm_waiting_requests: Annotated[float, Field(gt=0)] = 20
    """Requests waiting in one vLLM server."""
    vllm_kv_cache_usage: Ratio = 0.9
    """KV-cache use of one vLLM server."""
    triton_queue_ms: Annotated[float, Field(gt=0)] = 100
    """Average Triton queue time per request."""
    quota_used_ratio: Ratio = 0.9
    """Share of a tenant quota (GPU, CPU, memory) in use."""
    volcano_pending_for: PrometheusDuration = "30m"
    """How long a Volcano queue may hold pending jobs."""


class EndpointAlerts(Model):
    """Per-endpoint alert thresholds; unset ones take ``monitoring.alerts``."""

    p95_latency_seconds: Annotated[float, Field(gt=0)] | None = None
    ttft_p95_seconds: Annotated[float, Field(gt=0)] | None = None
    error_ratio: Ratio | None = None


class MetricsStorage(Model):
    """Prometheus's persistent volume."""

    size: Quantity = "50Gi"
    storage_class: str | None = None


HostPort = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:\d{1,5}$")]
# Where alerts of a severity go: ``monitoring.routing``; the tenant receivers are ``tenant-<tenant>``.
SEVERITIES = ("critical", "warning")
TENANT_RECEIVER_PREFIX = "tenant-"


class Receiver(Model):
    """Where alerts go: a Slack channel, a PagerDuty service, a webhook or e-mail. The credential is never in the
    stack file: the Slack incoming-webhook URL, the PagerDuty Events v2 routing key, the webhook URL or the SMTP
    password is a Pulumi secret ``ai-platform:alertReceiver-<receiver>`` (``pulumi config set --secret``), or with
    ``secrets.source: external-secrets`` the property ``<receiver>`` of ``<keyPrefix>/alertmanager-receivers``."""

    kind: Literal["slack", "pagerduty", "webhook", "email"]
    """``slack`` (incoming webhook), ``pagerduty`` (Events API v2), ``webhook`` (Alertmanager's JSON POST) or
    ``email``."""
    channel: Annotated[str, Field(pattern=r"^[#@]\S+$")] | None = None
    """slack: channel (``#name``) or user (``@name``) overriding the webhook's own channel."""
    to: list[EmailAddress] = []
    """email: recipients."""
    sender: EmailAddress | None = None
    """email: the ``From`` address."""
    smarthost: HostPort | None = None
    """email: SMTP relay as ``host:port``."""
    auth_username: Annotated[str, Field(min_length=1)] | None = None
    """email: SMTP user; with it the relay's password is the receiver's secret. Unset: the relay takes mail
    without login (and the receiver needs no secret)."""
    require_tls: bool = True
    """email: insist on STARTTLS."""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Receiver:
        problems = []
        if self.kind == "email":
            for field in ("to", "sender", "smarthost"):
                if not getattr(self, field):
                    problems.append((field, "an email receiver needs to, sender and smarthost"))
        else:
            for field in ("to", "sender", "smarthost", "auth_username"):
                if getattr(self, field):
                    problems.append((to_camel(field), f"only for kind email (kind is {self.kind})"))
        if self.channel and self.kind != "slack":
            problems.append(("channel", f"only for kind slack (kind is {self.kind})"))
        return valid(self, problems)

    @property
    def needs_secret(self) -> bool:
        """Whether the receiver has a credential (all but an e-mail relay without login)."""
        return self.kind != "email" or self.auth_username is not None


class NamedReceiver(Receiver):
    """A platform receiver, named so that ``routing`` can send alerts to it."""

    name: DnsLabel
    """Receiver name (``null`` and ``tenant-*`` are the platform's)."""


class Routing(Model):
    """Which receivers get the platform's alerts, by ``severity`` label. Alerts of a tenant (label ``tenant``) also go
    to the tenant's ``alertReceiver``. Unlisted severities, and the chart's Watchdog, go to the ``null`` receiver."""

    critical: list[DnsLabel] = []
    """Receivers of ``severity=critical`` alerts (e.g. PagerDuty and Slack)."""
    warning: list[DnsLabel] = []
    """Receivers of ``severity=warning`` alerts."""


class Monitoring(Model):
    """kube-prometheus-stack (Prometheus, Alertmanager, Grafana), scraping, alert packs, dashboards."""

    enabled: bool = True
    """Install the monitoring stack and every ServiceMonitor, rule and dashboard of the platform."""
    retention: PrometheusDuration = "15d"
    """How long Prometheus keeps samples."""
    storage: MetricsStorage = MetricsStorage()
    """Prometheus storage."""
    prometheus_replicas: Annotated[int, Field(ge=1, le=5, strict=True)] = 1
    """Prometheus replicas (each scrapes everything)."""
    runbook_url: HttpsUrl = "https://runbooks.example.com/ai-platform"
    """Base URL of the runbooks; each alert links to ``<runbookUrl>/<alert name>``."""
    alerts: Alerts = Alerts()
    """Alert thresholds."""
    receivers: list[NamedReceiver] = []
    """Alertmanager receivers of the platform's alerts (``routing`` says which get what); none: alerts notify no
    one (the chart's ``null`` receiver)."""
    routing: Routing = Routing()
    """Receivers per severity."""

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Monitoring:
        problems: Problems = []
        names = [r.name for r in self.receivers]
        for index, name in enumerate(names):
            if name == "null" or name.startswith(TENANT_RECEIVER_PREFIX):
                problems.append(
                    (
                        f"receivers[{index}].name",
                        f"{name!r} is reserved (null, {TENANT_RECEIVER_PREFIX}*: the tenants' receivers)",
                    )
                )
            if name in names[:index]:
                problems.append(
                    (f"receivers[{index}].name", f"duplicate receiver {name!r} (also receivers[{names.index(name)}])")
                )
        for severity in SEVERITIES:
            targets = getattr(self.routing, severity)
            for index, name in enumerate(targets):
                if name not in names:
                    problems.append(
                        (
                            f"routing.{severity}[{index}]",
                            f"no receiver {name!r} (receivers: {', '.join(names) or 'none'})",
                        )
                    )
                if name in targets[:index]:
                    problems.append((f"routing.{severity}[{index}]", f"{name!r} is listed twice"))
        return valid(self, problems)
