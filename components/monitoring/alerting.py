"""Alertmanager's configuration: receivers, routing by severity and tenant, inhibition. Pure functions, no resources.

The stack's receivers (``PlatformConfig.alert_receivers``: ``monitoring.receivers`` and one ``tenant-<tenant>`` per
tenant ``alertReceiver``) become the chart's ``alertmanager.config``; their credentials never enter Helm values. They
sit in the Secret ``RECEIVERS_SECRET`` of the monitoring namespace (one key per receiver, from Pulumi secrets or the
external store, see ``Monitoring``), which the Prometheus Operator mounts into the Alertmanager pods
(``alertmanagerSpec.secrets``), and each receiver names its file (``*_file`` fields), read at notification time.

Upstream facts, Alertmanager v0.34.0 (the image kube-prometheus-stack 88.5.3 runs: values.yaml
``alertmanager.alertmanagerSpec.image.tag``), prometheus/alertmanager at tag v0.34.0:
- ``slack_configs[].api_url_file``, ``channel``: config/notifiers.go ``SlackConfig``;
- ``pagerduty_configs[].routing_key_file`` (Events API v2): notify/pagerduty/config.go ``PagerdutyConfig``;
- ``webhook_configs[].url_file``: notify/webhook/config.go ``WebhookConfig`` ("one of url or url_file");
- ``email_configs[].to`` (one string, comma-separated), ``from``, ``smarthost``, ``auth_username``,
  ``auth_password_file``, ``require_tls``: config/notifiers.go ``EmailConfig``;
- ``send_resolved``: the ``NotifierConfig`` every one of them inlines (config/common/notifierconfig.go);
- ``route`` (``matchers``, ``continue``, ``repeat_interval``, ``group_by``...), ``inhibit_rules`` (``source_matchers``,
  ``target_matchers``, ``equal``) and the receivers' ``*_configs`` sections: config/config.go.
``NOTIFIER_FIELDS`` lists those keys; tests/test_alerting.py holds the generated configuration to it and runs it
through ``amtool check-config``.

Prometheus Operator (kube-prometheus-stack 88.5.3, crds/alertmanagers.monitoring.coreos.com.yaml ``spec.secrets``):
each Secret listed is mounted at ``/etc/alertmanager/secrets/<secret>`` in the alertmanager container. The operator
(v0.93.1; read at v0.93.0, the nearest tag in the stored mirror) parses the configuration with Alertmanager's own
config package, v0.33.1 in its go.mod, which knows every field above (webhook ``url_file`` since v0.26); its
pkg/alertmanager/amcfg.go drops only fields newer than the running Alertmanager, none of ours.

Routing. Every alert is grouped by ``alertname``, ``namespace`` and ``tenant``. The chart's ``Watchdog`` (the
always-firing dead man's switch) goes to the ``null`` receiver and stops there, as in the chart's default. Then,
each route with ``continue`` so that one alert reaches every receiver that should have it: a tenant's alerts (label
``tenant``, which the platform's tenant-scoped rules carry, ``rules.py``) to the tenant's receiver, and
``severity=critical``/``warning`` alerts to the receivers ``monitoring.routing`` lists. What no route takes
(``severity=info``, the chart's ``InfoInhibitor``) goes to ``null``. Inhibition: the chart's rules (values.yaml
``alertmanager.config.inhibit_rules``), each also requiring the same ``tenant``: a critical alert silences the
warning and info alerts of the same alert name, namespace and tenant.
"""

from __future__ import annotations

from config.monitoring import SEVERITIES, TENANT_RECEIVER_PREFIX, Receiver, Routing

RECEIVERS_SECRET = "alertmanager-receivers"
SECRETS_DIR = "/etc/alertmanager/secrets"
NULL = "null"
GROUP_BY = ["alertname", "namespace", "tenant"]
# First notification after 30 s (alerts of a group arriving together go out together), changes of a group every
# 5 minutes, a firing alert again every 4 hours (critical ones every hour).
TIMING = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
CRITICAL_REPEAT = "1h"
# The chart's default (values.yaml alertmanager.config.templates), kept.
TEMPLATES = ["/etc/alertmanager/config/*.tmpl"]

# Keys of each notifier config the platform writes, as Alertmanager v0.34.0 spells them (sources above).
NOTIFIER_FIELDS = {
    "slack_configs": {"send_resolved", "api_url_file", "channel"},
    "pagerduty_configs": {"send_resolved", "routing_key_file"},
    "webhook_configs": {"send_resolved", "url_file"},
    "email_configs": {"send_resolved", "to", "from", "smarthost", "auth_username", "auth_password_file", "require_tls"},
}
# The notifier section of each receiver kind and the key of its credential file.
NOTIFIER = {
    "slack": ("slack_configs", "api_url_file"),
    "pagerduty": ("pagerduty_configs", "routing_key_file"),
    "webhook": ("webhook_configs", "url_file"),
    "email": ("email_configs", "auth_password_file"),
}


def credential_file(receiver: str, secrets_dir: str = SECRETS_DIR) -> str:
    """Where Alertmanager reads a receiver's credential: its key in the mounted ``RECEIVERS_SECRET``."""
    return f"{secrets_dir}/{RECEIVERS_SECRET}/{receiver}"


def receiver_config(name: str, receiver: Receiver, secrets_dir: str = SECRETS_DIR) -> dict:
    """One entry of ``receivers``: the receiver's notifier, its credential as a file."""
    section, file_key = NOTIFIER[receiver.kind]
    notifier: dict = {"send_resolved": True}
    if receiver.needs_secret:
        notifier[file_key] = credential_file(name, secrets_dir)
    if receiver.kind == "slack" and receiver.channel:
        notifier["channel"] = receiver.channel
    if receiver.kind == "email":
        notifier.update(
            {
                "to": ", ".join(receiver.to),
                "from": receiver.sender,
                "smarthost": receiver.smarthost,
                "require_tls": receiver.require_tls,
            }
        )
        if receiver.auth_username:
            notifier["auth_username"] = receiver.auth_username
    return {"name": name, section: [notifier]}


def routes(receivers: dict[str, Receiver], routing: Routing) -> list[dict]:
    """The routes below the root: Watchdog to null, then tenants' and severities' receivers (``continue``)."""
    found: list[dict] = [{"receiver": NULL, "matchers": ['alertname = "Watchdog"']}]
    for name in receivers:
        if name.startswith(TENANT_RECEIVER_PREFIX):
            tenant = name[len(TENANT_RECEIVER_PREFIX) :]
            found.append({"receiver": name, "matchers": [f'tenant = "{tenant}"'], "continue": True})
    for severity in SEVERITIES:
        for name in getattr(routing, severity):
            route = {"receiver": name, "matchers": [f'severity = "{severity}"'], "continue": True}
            if severity == "critical":
                route["repeat_interval"] = CRITICAL_REPEAT
            found.append(route)
    return found


def inhibit_rules() -> list[dict]:
    """The chart's inhibition rules (values.yaml ``alertmanager.config.inhibit_rules``), the same tenant required."""
    return [
        {
            "source_matchers": ["severity = critical"],
            "target_matchers": ["severity =~ warning|info"],
            "equal": ["namespace", "alertname", "tenant"],
        },
        {
            "source_matchers": ["severity = warning"],
            "target_matchers": ["severity = info"],
            "equal": ["namespace", "alertname", "tenant"],
        },
        {
            "source_matchers": ["alertname = InfoInhibitor"],
            "target_matchers": ["severity = info"],
            "equal": ["namespace"],
        },
        {"target_matchers": ["alertname = InfoInhibitor"]},
    ]


def alertmanager_config(receivers: dict[str, Receiver], routing: Routing, secrets_dir: str = SECRETS_DIR) -> dict:
    """The whole Alertmanager configuration (the chart's ``alertmanager.config``: every top-level key is set, so no
    chart default is merged into it)."""
    return {
        "global": {"resolve_timeout": "5m"},
        "inhibit_rules": inhibit_rules(),
        "route": {"receiver": NULL, "group_by": list(GROUP_BY), **TIMING, "routes": routes(receivers, routing)},
        "receivers": [{"name": NULL}]
        + [receiver_config(name, receiver, secrets_dir) for name, receiver in receivers.items()],
        "templates": list(TEMPLATES),
    }


def needs_secret(receivers: dict[str, Receiver]) -> list[str]:
    """The receivers with a credential in ``RECEIVERS_SECRET``."""
    return [name for name, receiver in receivers.items() if receiver.needs_secret]
