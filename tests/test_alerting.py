"""Alert routing (issue 16, defect 9): the Alertmanager configuration the program declares is valid for the real
``amtool`` and routes a tenant's alerts to the tenant's receiver and every alert to its severity's receivers; the
receivers' credentials reach Alertmanager only as files of a mounted Secret, never in clear."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.monitoring import alerting
from components.monitoring.rules import INFERENCE_RULES, TENANCY_RULES
from config.loader import RECEIVER_SECRET_PREFIX
from tests.conftest import accept_loss, config_copy, load, run, run_stack, stack_cfg
from tools.harness import CANARY, SECRET

MON, T = "ai-platform:monitoring", "ai-platform:tenants"
# A receiver of every kind, and tenant receivers, for fixture stacks.
EVERY_KIND = {
    "receivers": [
        {"name": "oncall", "kind": "pagerduty"},
        {"name": "chat", "kind": "slack", "channel": "#ai-platform"},
        {"name": "hook", "kind": "webhook"},
        {
            "name": "mail",
            "kind": "email",
            "to": ["ops@example.com", "ai@example.com"],
            "sender": "am@example.com",
            "smarthost": "smtp.example.com:587",
            "authUsername": "alertmanager",
        },
        {
            "name": "relay",
            "kind": "email",
            "to": ["ops@example.com"],
            "sender": "am@example.com",
            "smarthost": "relay.example.com:25",
            "requireTls": False,
        },
    ],
    "routing": {"critical": ["oncall", "chat", "mail"], "warning": ["chat", "hook", "relay"]},
}
TENANT_RECEIVERS = [{"kind": "slack", "channel": "#research"}, {"kind": "webhook"}]
# What a credential file holds, per kind (Alertmanager validates nothing of it at load; realistic anyway).
CREDENTIALS = {
    "slack": "https://hooks.slack.com/services/T000/B000/XXXX",
    "pagerduty": "0123456789abcdef0123456789abcdef",
    "webhook": "https://alerts.example.com/hook",
    "email": "smtp-password",
}


def _with_receivers(stack: str, secure: bool) -> dict:
    config = accept_loss(config_copy(stack))
    config[MON] = {**config.get(MON, {}), **EVERY_KIND}
    for tenant, receiver in zip(config[T], TENANT_RECEIVERS, strict=False):
        tenant["alertReceiver"] = receiver
    if secure:
        names = [r["name"] for r in EVERY_KIND["receivers"] if r["name"] != "relay"]
        names += [f"tenant-{t['name']}" for t in config[T][: len(TENANT_RECEIVERS)]]
        config.update({f"ai-platform:{RECEIVER_SECRET_PREFIX}{name}": {"secure": "v1:ciphertext"} for name in names})
    return config


def _run(stack: str, config: dict):
    result = run(stack, config)
    assert result.error is None, result.error
    return result, load(stack, {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("ai-platform:")})


@pytest.fixture(scope="module")
def runs():
    """Both stack files and the fixture stacks with every receiver kind: dev (Pulumi secrets), prod (the store)."""
    found = {stack: (run_stack(stack), stack_cfg(stack)) for stack in ("dev", "prod")}
    found["dev-every-kind"] = _run("dev", _with_receivers("dev", secure=True))
    found["prod-every-kind"] = _run("prod", _with_receivers("prod", secure=False))
    return found


@pytest.fixture(scope="module")
def amtool():
    path = shutil.which("amtool")
    if path is None:
        message = "amtool (Debian prometheus-alertmanager) is missing: run `make runtime-tools`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def alertmanager_values(result) -> dict:
    (release,) = [r for r in result.releases if r.inputs["chart"] == "kube-prometheus-stack"]
    return release.inputs["values"]["alertmanager"]


def materialise(config: dict, receivers: dict, folder: Path) -> Path:
    """The configuration as amtool 0.25 can load it, credentials as files in ``folder`` (the mounted Secret's keys).
    amtool 0.25 predates ``webhook_configs[].url_file`` (Alertmanager v0.34.0 has it: notify/webhook/config.go
    ``WebhookConfig.URLFile``, yaml ``url_file``): for amtool the file's URL goes into ``url``, the rest is
    checked as generated."""
    secrets_dir = folder / alerting.RECEIVERS_SECRET
    secrets_dir.mkdir(parents=True)
    for name in alerting.needs_secret(receivers):
        (secrets_dir / name).write_text(CREDENTIALS[receivers[name].kind])
    text = json.dumps(config).replace(f"{alerting.SECRETS_DIR}/", f"{folder}/")
    local = json.loads(text)
    for receiver in local["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = Path(webhook.pop("url_file")).read_text()
    path = folder / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def routed(amtool: str, path: Path, **labels: str) -> set[str]:
    """The receivers amtool's routing test sends an alert with ``labels`` to."""
    out = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={path}",
            *(f"{key}={value}" for key, value in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.strip().split(","))


@pytest.mark.parametrize("name", ["dev", "prod", "dev-every-kind", "prod-every-kind"])
@pytest.mark.invariant
def test_amtool_accepts_the_configuration_and_routes_by_tenant_and_severity(runs, amtool, tmp_path, name):
    result, cfg = runs[name]
    values = alertmanager_values(result)
    receivers = cfg.alert_receivers
    assert receivers and set(receivers) == {r["name"] for r in values["config"]["receivers"]} - {alerting.NULL}
    path = materialise(values["config"], receivers, tmp_path)
    check = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    routing = cfg.monitoring.routing
    for tenant in cfg.tenants:
        own = {f"tenant-{tenant.name}"} if tenant.alert_receiver else set()
        assert routed(
            amtool,
            path,
            alertname="AiPlatformEndpointDown",
            tenant=tenant.name,
            severity="critical",
            namespace=tenant.name,
        ) == own | set(routing.critical)
        assert routed(
            amtool, path, alertname="AiPlatformTenantQuotaNearlyUsed", tenant=tenant.name, severity="warning"
        ) == own | set(routing.warning)
    assert routed(amtool, path, alertname="KubeNodeNotReady", severity="warning") == set(routing.warning)
    assert routed(amtool, path, alertname="Watchdog", severity="none") == {alerting.NULL}
    assert routed(amtool, path, alertname="Watchdog", severity="critical", tenant="research") == {alerting.NULL}
    assert routed(amtool, path, alertname="InfoInhibitor", severity="none") == {alerting.NULL}


def test_receivers_read_their_credentials_from_the_mounted_secret_only(runs):
    """Each receiver with a credential names its file in the mounted Secret, with the keys Alertmanager v0.34.0
    knows (``alerting.NOTIFIER_FIELDS``); the values hold no credential."""
    for name, (result, cfg) in runs.items():
        values = alertmanager_values(result)
        needing = alerting.needs_secret(cfg.alert_receivers)
        assert values["alertmanagerSpec"].get("secrets", []) == ([alerting.RECEIVERS_SECRET] if needing else []), name
        for receiver in values["config"]["receivers"]:
            sections = {key: configs for key, configs in receiver.items() if key != "name"}
            if receiver["name"] == alerting.NULL:
                assert sections == {}
                continue
            kind = cfg.alert_receivers[receiver["name"]].kind
            section, file_key = alerting.NOTIFIER[kind]
            assert list(sections) == [section], name
            (notifier,) = sections[section]
            assert set(notifier) <= alerting.NOTIFIER_FIELDS[section], (name, receiver)
            files = {key: value for key, value in notifier.items() if key.endswith("_file")}
            expected = {file_key: f"{alerting.SECRETS_DIR}/{alerting.RECEIVERS_SECRET}/{receiver['name']}"}
            assert files == (expected if receiver["name"] in needing else {}), (name, receiver)
            assert not {"url", "api_url", "routing_key", "service_key", "auth_password"} & set(notifier)


def test_the_credentials_secret_holds_one_key_per_receiver_in_both_modes(runs):
    result, cfg = runs["dev-every-kind"]
    secret = result.one("Secret", alerting.RECEIVERS_SECRET, cfg.namespaces.monitoring)
    assert secret.inputs["stringData"] == SECRET
    assert "relay" not in alerting.needs_secret(cfg.alert_receivers)  # an e-mail relay without login: no key
    result, cfg = runs["prod-every-kind"]
    spec = result.one("ExternalSecret", alerting.RECEIVERS_SECRET, cfg.namespaces.monitoring).inputs["spec"]
    assert set(spec["target"]["template"]["data"]) == set(alerting.needs_secret(cfg.alert_receivers))
    assert result.outputs["secretStoreKeys"][f"{cfg.secrets.key_prefix}/{alerting.RECEIVERS_SECRET}"] == sorted(
        alerting.needs_secret(cfg.alert_receivers)
    )
    result, cfg = runs["prod"]
    assert result.outputs["secretStoreKeys"]["ai-platform/prod/alertmanager-receivers"] == [
        "oncall",
        "platform-slack",
        "tenant-research",
    ]
    result, _ = runs["dev"]  # only an e-mail relay without login: no Secret at all
    assert not [r for r in result.objects if r.k8s_name == alerting.RECEIVERS_SECRET]


def test_receiver_credentials_never_appear_in_clear(runs):
    """The harness turns every ``secure:`` value into the canary: no registered input or output may contain it."""
    result, _ = runs["dev-every-kind"]
    assert CANARY not in json.dumps([r.inputs for r in result.resources]) + json.dumps(result.outputs, default=str)
    holders = [r for r in result.resources if SECRET in json.dumps(r.inputs)]
    assert {r.k8s_name for r in holders} >= {alerting.RECEIVERS_SECRET}


def test_tenant_scoped_alerts_carry_the_tenant_label(runs):
    """Alertmanager routes a tenant's alerts on ``tenant``: every endpoint alert, the quota alert and the Volcano
    queue alert carry it (static, or templated from the series' namespace / queue)."""
    result, cfg = runs["prod"]
    rules = {r.k8s_name: r.inputs["spec"]["groups"] for r in result.of_kind("PrometheusRule")}
    endpoint_alerts = [rule for group in rules[INFERENCE_RULES] for rule in group["rules"]]
    assert endpoint_alerts
    for rule in endpoint_alerts:
        assert rule["labels"]["tenant"] in {t.name for t in cfg.tenants}, rule["alert"]
    tenancy = {rule["alert"]: rule for group in rules[TENANCY_RULES] for rule in group["rules"]}
    assert tenancy["AiPlatformTenantQuotaNearlyUsed"]["labels"]["tenant"] == "{{ $labels.namespace }}"
    assert tenancy["AiPlatformVolcanoQueuePending"]["labels"]["tenant"] == "{{ $labels.queue_name }}"
