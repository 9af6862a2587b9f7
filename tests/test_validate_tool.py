"""Tests for tools/validate.py, the schema tier: each check must accept good input and reject bad input."""

import copy
import textwrap

import pytest

from tools import validate
from tools.validate import (
    cached_yaml_documents,
    load_yaml_documents,
    main,
    upstream_dir,
    validate_helm_values,
    validate_object,
)

K8S = "1.35"

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "apps"},
    "data": {"key": "value"},
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "apps"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}

QUEUE = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "Queue",
    "metadata": {"name": "team-a"},
    "spec": {"weight": 2, "reclaimable": True, "capability": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": 2}},
}


# --- built-in kinds -----------------------------------------------------------------------------------------


def test_valid_configmap_passes():
    assert validate_object(CONFIGMAP, K8S) == []


def test_valid_deployment_passes():
    assert validate_object(DEPLOYMENT, K8S) == []


def test_unknown_field_in_pod_spec_fails():
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containerz"] = []
    errors = validate_object(bad, K8S)
    assert len(errors) == 1
    assert errors[0].startswith("Deployment apps/web: $.spec.template.spec:")
    assert "containerz" in errors[0]


def test_wrong_type_in_builtin_fails():
    bad = copy.deepcopy(CONFIGMAP)
    bad["data"]["key"] = 3
    errors = validate_object(bad, K8S)
    assert errors and "$.data.key" in errors[0]


def test_unknown_kubernetes_version_errors_clearly():
    errors = validate_object(CONFIGMAP, "1.99")
    assert len(errors) == 1
    assert "unsupported Kubernetes version '1.99'" in errors[0]
    assert "1.25" in errors[0] and "1.37" in errors[0]


def test_removed_builtin_api_version_fails():
    old = dict(DEPLOYMENT, apiVersion="extensions/v1beta1")
    assert validate_object(old, K8S)


def test_missing_name_fails():
    errors = validate_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, K8S)
    assert any("$.metadata.name" in e for e in errors)


# --- custom resources ---------------------------------------------------------------------------------------


def test_valid_volcano_queue_passes():
    assert validate_object(QUEUE, K8S) == []


def test_none_values_are_dropped_like_the_api_server():
    queue = copy.deepcopy(QUEUE)
    queue["spec"]["parent"] = None
    assert validate_object(queue, K8S) == []


def test_misspelled_queue_field_fails():
    bad = copy.deepcopy(QUEUE)
    bad["spec"]["wieght"] = bad["spec"].pop("weight")
    errors = validate_object(bad, K8S)
    assert len(errors) == 1
    assert errors[0].startswith("Queue team-a: $.spec:")
    assert "wieght" in errors[0]


def test_wrongly_typed_queue_field_fails():
    bad = copy.deepcopy(QUEUE)
    bad["spec"]["weight"] = "two"
    errors = validate_object(bad, K8S)
    assert len(errors) == 1 and "$.spec.weight" in errors[0]


def test_bad_quantity_in_int_or_string_fails():
    bad = copy.deepcopy(QUEUE)
    bad["spec"]["capability"]["cpu"] = "lots"
    assert any("$.spec.capability.cpu" in e for e in validate_object(bad, K8S))


def test_unserved_crd_version_fails():
    bad = dict(QUEUE, apiVersion="scheduling.volcano.sh/v1alpha9")
    errors = validate_object(bad, K8S)
    assert len(errors) == 1
    assert "not served" in errors[0] and "v1beta1" in errors[0]


def test_unknown_kind_fails():
    errors = validate_object({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, K8S)
    assert errors == ["Widget w: $: no schema for example.com/v1 Widget"]


def test_unknown_kind_in_known_group_fails():
    errors = validate_object(dict(QUEUE, kind="Queueue"), K8S)
    assert errors and "no schema for scheduling.volcano.sh/v1beta1 Queueue" in errors[0]


def test_crd_without_apiversion_kind_properties_accepts_them():
    """Istio's CRDs declare only spec/status at the top; apiVersion, kind and metadata are always allowed."""
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "v", "namespace": "apps"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    }
    assert validate_object(vs, K8S) == []
    vs["spec"]["hostz"] = ["web"]
    assert any("hostz" in e for e in validate_object(vs, K8S))


def test_go_regex_with_inline_flag_is_usable():
    """alertmanagerconfigs has `(?i)` inside patterns (fine in Go, not at that place in Python)."""
    amc = {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": "a", "namespace": "mon"},
        "spec": {"muteTimeIntervals": [{"name": "weekend", "timeIntervals": [{"weekdays": ["Saturday:sunday"]}]}]},
    }
    assert validate_object(amc, K8S) == []
    amc["spec"]["muteTimeIntervals"][0]["timeIntervals"][0]["weekdays"] = ["someday"]
    assert validate_object(amc, K8S)


# --- parsed upstream files, cached on disk ------------------------------------------------------------------


def _no_parse(text):
    raise AssertionError("parsed again although the cache holds this content")


def test_cache_returns_what_a_fresh_parse_returns(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "CACHE_DIR", tmp_path / "cache")
    path = upstream_dir() / "volcano" / "crds" / "queues.scheduling.volcano.sh.yaml"
    fresh = load_yaml_documents(path.read_text())
    assert cached_yaml_documents(path) == fresh  # parsed and stored
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 1
    monkeypatch.setattr(validate, "load_yaml_documents", _no_parse)
    assert cached_yaml_documents(path) == fresh  # from the cache


def test_changed_file_is_parsed_again_and_a_broken_entry_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "CACHE_DIR", tmp_path / "cache")
    path = tmp_path / "values.yaml"
    path.write_text("replicas: 1\n")
    assert cached_yaml_documents(path) == [{"replicas": 1}]
    path.write_text("replicas: 2\n---\nother: true\n")
    assert cached_yaml_documents(path) == [{"replicas": 2}, {"other": True}]
    entries = sorted((tmp_path / "cache").glob("*.pickle"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_bytes(b"not a pickle")
    assert cached_yaml_documents(path) == [{"replicas": 2}, {"other": True}]
    monkeypatch.setattr(validate, "load_yaml_documents", _no_parse)
    assert cached_yaml_documents(path) == [{"replicas": 2}, {"other": True}]  # the entry was written again


# --- Helm values --------------------------------------------------------------------------------------------


def test_volcano_values_pass():
    values = {"custom": {"scheduler_replicas": 2, "scheduler_config_override": "actions: ..."}}
    assert validate_helm_values("volcano", values) == []


def test_misspelled_volcano_key_fails():
    errors = validate_helm_values("volcano", {"custom": {"schedulr_replicas": 2}})
    assert len(errors) == 1
    assert errors[0].startswith("volcano: values.custom.schedulr_replicas: not in upstream values.yaml")
    assert "scheduler_replicas" in errors[0]  # the suggestion


def test_free_form_map_takes_any_keys():
    assert validate_helm_values("volcano", {"custom": {"default_ns": {"pool": "gpu"}}}) == []


def test_unknown_top_level_key_fails():
    assert validate_helm_values("volcano", {"costum": {}})


def test_unknown_chart_fails():
    assert validate_helm_values("no-such-chart", {})


def test_values_schema_rejects_wrong_type():
    """cert-manager ships values.schema.json: replicaCount is a number."""
    assert validate_helm_values("cert-manager", {"replicaCount": 2}) == []
    errors = validate_helm_values("cert-manager", {"replicaCount": "two"})
    assert len(errors) == 1
    assert errors[0].startswith("cert-manager: values.replicaCount:") and "values.schema.json" in errors[0]


def test_subchart_key_passes():
    """grafana is a subchart of kube-prometheus-stack: its keys live in charts/grafana/values.yaml."""
    values = {
        "grafana": {"enabled": True, "adminUser": "admin", "persistence": {"enabled": True}},
        "global": {"rbac": {"create": True}},
    }
    assert validate_helm_values("kube-prometheus-stack", values) == []


def test_misspelled_subchart_key_fails():
    errors = validate_helm_values("kube-prometheus-stack", {"grafana": {"adminUsr": "admin"}})
    assert len(errors) == 1
    assert "values.grafana.adminUsr" in errors[0] and "adminUser" in errors[0]


def test_misspelled_global_key_fails():
    errors = validate_helm_values("kube-prometheus-stack", {"global": {"rbacc": {}}})
    assert len(errors) == 1 and "values.global.rbacc" in errors[0]


def test_subchart_schema_rejects_wrong_type():
    """mlflow's postgresql subchart section is checked against the schemas too."""
    assert validate_helm_values("mlflow", {"postgresql": {"enabled": True}}) == []
    errors = validate_helm_values("mlflow", {"postgresql": {"enabled": "yes"}})
    assert errors and all("values.postgresql.enabled" in e for e in errors)


def test_istio_internal_defaults_count_as_top_level_keys():
    """Istio's values.yaml nests every default under _internal_defaults_do_not_set; users set them at the top."""
    values = {
        "cni": {"enabled": True},
        "autoscaleMin": 2,
        "seccompProfile": {"type": "RuntimeDefault"},
        "global": {"hub": "registry.example.com/istio", "proxy": {"seccompProfile": {"type": "RuntimeDefault"}}},
    }
    assert validate_helm_values("istiod", values) == []
    assert validate_helm_values("cni", {"ambient": {"enabled": False}, "global": {"hub": "r.example.com/istio"}}) == []


def test_misspelled_istio_key_fails():
    errors = validate_helm_values("istiod", {"cni": {"enabeld": True}})
    assert len(errors) == 1
    assert errors[0].startswith("istiod: values.cni.enabeld: not in upstream values.yaml") and "enabled" in errors[0]
    errors = validate_helm_values("istiod", {"global": {"proxy": {"seccompProfil": {}}}})
    assert len(errors) == 1 and "values.global.proxy.seccompProfil" in errors[0] and "seccompProfile" in errors[0]


def test_istio_internal_defaults_key_itself_is_not_a_value_to_set():
    errors = validate_helm_values("istiod", {"_internal_defaults_do_not_set": {"cni": {"enabled": True}}})
    assert len(errors) == 1 and "values._internal_defaults_do_not_set" in errors[0]


def test_istio_mesh_config_is_a_passthrough_document():
    """istiod renders meshConfig verbatim as MeshConfig; values.yaml lists one of its fields only."""
    mesh_config = {"accessLogFile": "/dev/stdout", "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    assert validate_helm_values("istiod", {"meshConfig": mesh_config}) == []


def test_istio_gateway_schema_checks_top_level_values():
    """The gateway chart's values.schema.json forbids unknown top-level keys and checks types."""
    assert validate_helm_values("gateway", {"replicaCount": 2, "autoscaling": {"minReplicas": 2}}) == []
    errors = validate_helm_values("gateway", {"replicaCount": "two"})
    assert len(errors) == 1 and errors[0].startswith("gateway: values.replicaCount:") and "schema" in errors[0]
    errors = validate_helm_values("gateway", {"autoscalng": {}})
    assert any("values.autoscalng: not in upstream values.yaml (did you mean autoscaling?)" in e for e in errors)


def test_key_documented_as_commented_example_in_its_mapping_passes():
    """SeaweedFS documents s3.createBuckets and s3.credentials only as commented-out examples under s3."""
    values = {
        "s3": {
            "enabled": True,
            "createBuckets": [{"name": "mlflow"}],
            "credentials": {"admin": {"existingSecret": "s3-keys", "accessKeyKey": "id"}},
        }
    }
    assert validate_helm_values("seaweedfs", values) == []


def test_commented_example_keys_keep_their_checks():
    errors = validate_helm_values(
        "seaweedfs",
        {"s3": {"createBucket": [{"name": "mlflow"}], "credentials": {"admin": {"existingSecrt": "s3-keys"}}}},
    )
    assert len(errors) == 2
    assert errors[0].startswith("seaweedfs: values.s3.createBucket: not in upstream values.yaml")
    assert "values.s3.credentials.admin.existingSecrt" in errors[1] and "existingSecret" in errors[1]


def test_commented_example_elsewhere_in_the_file_does_not_count():
    """createBuckets is commented out under s3 and filer.s3, not at the top level or under master."""
    for values in ({"createBuckets": []}, {"master": {"createBuckets": []}}):
        errors = validate_helm_values("seaweedfs", values)
        assert len(errors) == 1 and "mentions it only in a comment" in errors[0]


def test_real_keys_stay_checked_below_a_commented_example_of_the_same_key():
    """master.data is set for real and also shown commented out: its keys are still checked."""
    assert validate_helm_values("seaweedfs", {"master": {"data": {"type": "persistentVolumeClaim"}}}) == []
    errors = validate_helm_values("seaweedfs", {"master": {"data": {"typ": "persistentVolumeClaim"}}})
    assert len(errors) == 1 and "values.master.data.typ" in errors[0]


def test_commented_keys_follow_indentation_and_skip_block_scalars(tmp_path, monkeypatch):
    _write(tmp_path / "demo" / "Chart.yaml", "name: demo\nversion: 1.0.0\n")
    _write(
        tmp_path / "demo" / "values.yaml",
        """\
        server:
          port: 80
          # extraPorts:
          #   - 8080
          # tls:
          #   secretName: ""
          affinity: |
            # notAKey: inside a block scalar
            podAntiAffinity: {}
          # Example: prose, not a key (upper-case)
        resources: {}
        # limits:
        #   cpu: 1
        """,
    )
    monkeypatch.setenv("AI_PLATFORM_UPSTREAM", str(tmp_path))
    ok = {"server": {"extraPorts": [8080], "tls": {"secretName": "t"}}, "resources": {"limits": {"cpu": 1}}}
    assert validate_helm_values("demo", ok) == []
    bad = {
        "server": {"tls": {"secretNam": "t"}, "notAKey": 1, "Example": 1, "limits": 1},
        "extraPorts": [],
        "limits": {"cpu": 1},
    }
    errors = validate_helm_values("demo", bad)
    assert sorted(e.split(":")[1].strip() for e in errors) == [
        "values.extraPorts",
        "values.limits",
        "values.server.Example",
        "values.server.limits",
        "values.server.notAKey",
        "values.server.tls.secretNam",
    ]


# --- CLI ----------------------------------------------------------------------------------------------------


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_cli_reports_errors_and_summary(tmp_path, capsys):
    _write(
        tmp_path / "manifests" / "apps" / "configmap-cfg.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg, namespace: apps}
        data: {key: value}
        """,
    )
    _write(
        tmp_path / "manifests" / "cluster" / "queue-team-a.yaml",
        """\
        apiVersion: scheduling.volcano.sh/v1beta1
        kind: Queue
        metadata: {name: team-a}
        spec: {wieght: 2}
        """,
    )
    _write(
        tmp_path / "helm" / "volcano.values.yaml",
        """\
        # chart: volcano
        # repo: https://volcano-sh.github.io/helm-charts
        # version: 1.15.1
        # namespace: volcano-system
        custom:
          scheduler_replicas: 2
        """,
    )
    assert main([str(tmp_path), "--k8s-version", K8S]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "validated 2 objects and 1 releases: 1 errors"
    assert out[0].startswith("manifests/cluster/queue-team-a.yaml: Queue team-a: $.spec:") and "wieght" in out[0]


def test_cli_passes_and_reads_version_file(tmp_path, capsys):
    _write(tmp_path / "kubernetes-version", "1.35\n")
    _write(tmp_path / "manifests" / "configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    _write(tmp_path / "helm" / "volcano.values.yaml", "# chart: volcano\ncustom: {schedulr_replicas: 1}\n")
    assert main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "validated 1 objects and 1 releases: 1 errors"
    _write(tmp_path / "helm" / "volcano.values.yaml", "# chart: volcano\ncustom: {scheduler_replicas: 1}\n")
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "validated 1 objects and 1 releases: 0 errors"


def test_cli_without_version_errors_out(tmp_path):
    (tmp_path / "manifests").mkdir()
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2


def test_cli_rejects_unknown_version(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--k8s-version", "1.99"])
    assert exc.value.code == 2
