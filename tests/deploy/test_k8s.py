"""The Kubernetes manifests (deploy/k8s), the Prometheus adapter rule and the Grafana
dashboard: rendered with ``kubectl kustomize`` (offline), every object checked, and
the policy scanner checkov run on the result.

No cluster runs here: kind and k3s need node images from the internet (docs/deploy.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deploy_tools import find_tool

from audio2face.metrics import Metrics
from audio2face.settings import Settings

yaml = pytest.importorskip("yaml", reason="pip install pyyaml")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
NAMESPACE = "audio2face"
PRESTOP_SLEEP_S = 5
EXPECTED_KINDS = {
    "Namespace", "ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
    "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "Ingress",
}  # fmt: skip


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not installed (apt-get install kubectl)")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    docs = render(request.param)
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    by_kind["_overlay"] = {"name": request.param}
    return by_kind


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def env_of(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(objects)["env"]}


def test_every_object_is_there_and_namespaced(objects) -> None:
    kinds = set(objects) - {"_overlay"}
    assert kinds == EXPECTED_KINDS
    for kind in kinds:
        obj = objects[kind]
        assert obj["apiVersion"] and obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "audio2face", kind
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, kind


def test_deployment_probes_drain_and_security(objects) -> None:
    dep = objects["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    c = container(objects)
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels(objects).items()
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SLEEP_S)]
    settings = settings_from_env(env_of(objects))
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_drain_s + PRESTOP_SLEEP_S
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), kind
    # The read-only root needs one writable path, and the metrics folder must be on it.
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/tmp" in mounts and env_of(objects)["PROMETHEUS_MULTIPROC_DIR"] == "/tmp"
    assert c["ports"][0]["containerPort"] == settings.port


def pod_labels(objects) -> dict[str, str]:
    return objects["Deployment"]["spec"]["template"]["metadata"]["labels"]


def settings_from_env(env: dict[str, str]) -> Settings:
    """The settings the pod's environment gives: every AUDIO2FACE_* name must be a real
    setting with a valid value (a typo would otherwise be ignored in the cluster)."""
    fields = set(Settings.model_fields)
    overrides = {}
    for name, value in env.items():
        if name.startswith("AUDIO2FACE_"):
            key = name.removeprefix("AUDIO2FACE_").lower()
            assert key in fields, f"{name} is not a setting"
            overrides[key] = value
    return Settings(**overrides)


def test_service_hpa_pdb_monitor_ingress_point_at_the_pods(objects) -> None:
    labels = pod_labels(objects)
    svc = objects["Service"]
    assert svc["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {
        p["name"] for p in container(objects)["ports"]
    }

    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "audio2face",
    }  # fmt: skip
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "a2f_active_streams"
    target = float(metric["pods"]["target"]["averageValue"])
    max_streams = settings_from_env(env_of(objects)).max_streams
    assert 0 < target < max_streams, "scale before pods start refusing streams"
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]

    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["maxUnavailable"] == 1

    mon = objects["ServiceMonitor"]["spec"]
    assert mon["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert mon["endpoints"][0]["port"] in port_names
    assert mon["endpoints"][0]["path"] == "/metrics"

    ing = objects["Ingress"]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"] and backend["port"]["name"] in port_names
    notes = ing["metadata"]["annotations"]
    idle = settings_from_env(env_of(objects)).idle_timeout_s
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(notes[f"nginx.ingress.kubernetes.io/{key}"]) > idle, key

    policy = objects["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert (
        policy["ingress"][0]["ports"][0]["port"] == container(objects)["ports"][0]["containerPort"]
    )


def test_overlays_differ_where_they_should(objects) -> None:
    c = container(objects)
    env = env_of(objects)
    if objects["_overlay"]["name"] == "gpu":
        assert c["image"].endswith("-cuda")
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert env["AUDIO2FACE_PROVIDERS"] == "cuda"
    else:
        assert not c["image"].endswith("-cuda") and ":" in c["image"]
        assert "nvidia.com/gpu" not in c["resources"]["limits"]
        assert env.get("AUDIO2FACE_PROVIDERS", "auto") != "cuda"


def test_adapter_rule_serves_the_hpa_metric() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "adapter-rules.yaml").read_text())
    (rule,) = rules["rules"]
    assert "a2f_active_streams" in rule["seriesQuery"]
    assert rule["name"]["as"] == "a2f_active_streams"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert "<<.Series>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]
    hpa = render("cpu")
    names = [d for d in hpa if d["kind"] == "HorizontalPodAutoscaler"]
    assert names[0]["spec"]["metrics"][0]["pods"]["metric"]["name"] == rule["name"]["as"]


def exported_names() -> set[str]:
    """Every sample name /metrics can show (counters with _total, histograms' series)."""
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_dashboard_queries_only_exported_metrics() -> None:
    path = ROOT / "deploy" / "grafana" / "audio2face-dashboard.json"
    board = json.loads(path.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(a2f_[a-z_]+)\b", e)}
    assert used and used <= exported_names(), used - exported_names()
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("streams", "latency", "refusals", "errors"):
        assert topic in titles, topic
    assert any("histogram_quantile(0.95" in e for e in exprs)
    # The JSON is generated: it must be what the script writes now.
    script = ROOT / "deploy" / "grafana" / "make_dashboard.py"
    generated = subprocess.run(
        [sys.executable, "-c",
         f"import runpy, json; d = runpy.run_path({str(script)!r})['dashboard'](); "
         "print(json.dumps(d, indent=2))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(generated) == board, "run python deploy/grafana/make_dashboard.py"


def checkov() -> str:
    found = find_tool("checkov")
    if found is None:
        pytest.skip("checkov not installed (pip install checkov, in its own venv: its pins clash)")
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes(overlay: str, tmp_path: Path) -> None:
    """Every failed check fails the test; skips live in annotations with a reason."""
    tool = checkov()
    rendered = tmp_path / f"{overlay}.yaml"
    docs = render(overlay)
    rendered.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    for doc in docs:
        for key, value in doc["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 30, value
    result = subprocess.run(
        [tool, "-f", str(rendered), "--framework", "kubernetes", "--compact", "--quiet",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=300,
        env={"BC_SKIP_MAPPING": "TRUE", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and result.returncode == 0, failed
    assert summary["passed"] > 50, summary  # it really scanned the objects
