"""The deployment files pass review offline: files read, nothing started, no network.

- every manifest under deploy/k8s validates (strict: no unknown field) against the
  Kubernetes API schemas of 1.27 and of the newest version kubernetes-validate knows; the
  one kind it does not know, the Prometheus Operator's ServiceMonitor, against a small
  schema of the fields used, and it must scrape the workers' Service;
- the pods (the workers, the topics Job) meet the Pod Security Standard "restricted" and
  run with a read-only root filesystem and a writable emptyDir at /tmp; the workers probe
  /health and /ready; the PodDisruptionBudget and the Service select the workers only;
  the settings are settings, and the Kafka Secrets optional;
- docker-compose.yml publishes its ports on loopback only and checks the worker on
  /ready, and the Dockerfile's HEALTHCHECK and .dockerignore fit what the image runs and
  copies.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from stream.settings import Settings, describe, env_name

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
# 1.27: matchLabelKeys of topology spread constraints is on by default from there
VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
PROM_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}


def _closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


# The fields of monitoring.coreos.com/v1 ServiceMonitor that servicemonitor.yaml uses, as
# the Operator's CRD defines them; anything else is refused (a typo would be ignored by
# neither kubectl nor the Operator's validation).
SERVICE_MONITOR = _closed(
    ["apiVersion", "kind", "metadata", "spec"],
    apiVersion={"const": "monitoring.coreos.com/v1"},
    kind={"const": "ServiceMonitor"},
    metadata=_closed(["name"], name={"type": "string"}, labels=LABELS),
    spec=_closed(
        ["selector", "endpoints"],
        jobLabel={"type": "string"},
        selector=_closed(["matchLabels"], matchLabels=LABELS),
        endpoints={
            "type": "array",
            "minItems": 1,
            "items": _closed(
                ["port"],
                port={"type": "string"},
                path={"type": "string", "pattern": "^/"},
                interval={"type": "string", "pattern": PROM_DURATION},
                scrapeTimeout={"type": "string", "pattern": PROM_DURATION},
            ),
        },
    ),
)


def documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in MANIFESTS:
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def one(kind: str) -> dict[str, Any]:
    [doc] = [doc for _, doc in documents() if doc["kind"] == kind]
    return doc


PODS = ("Deployment", "Job")  # the kinds with a pod template: the workers, the topics Job


def pod_spec(kind: str = "Deployment") -> dict[str, Any]:
    return one(kind)["spec"]["template"]["spec"]


def pod_labels(kind: str = "Deployment") -> dict[str, str]:
    return one(kind)["spec"]["template"]["metadata"]["labels"]


def configmap_env() -> dict[str, str]:
    return one("ConfigMap")["data"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variable -> its secretKeyRef."""
    return {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in container.get("env", [])
        if "secretKeyRef" in v.get("valueFrom", {})
    }


# --- deploy/k8s ---------------------------------------------------------------------


def test_the_manifests_are_found() -> None:
    kinds = sorted(doc["kind"] for _, doc in documents())
    assert kinds == ["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service", "ServiceMonitor"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    invalid, unknown = [], []
    for path, doc in documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.append((path.name, doc["apiVersion"], doc["kind"]))
        except kubernetes_validate.ValidationError as exc:
            invalid.append(f"{path.name} {doc['kind']} at {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not invalid
    assert unknown == [("servicemonitor.yaml", "monitoring.coreos.com/v1", "ServiceMonitor")]


def test_the_service_monitor_uses_known_fields_and_scrapes_the_service() -> None:
    monitor, service = one("ServiceMonitor"), one("Service")
    jsonschema.Draft202012Validator(SERVICE_MONITOR).validate(monitor)
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert all(endpoint["port"] in port_names for endpoint in monitor["spec"]["endpoints"])
    assert {endpoint["path"] for endpoint in monitor["spec"]["endpoints"]} == {"/metrics"}
    # the job label: the job deploy/prometheus/alerts.yml's rules expect
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "touchstream"
    assert 'job="touchstream"' in (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()


@pytest.mark.parametrize("kind", PODS)
def test_the_pods_meet_the_restricted_pod_security_standard(kind: str) -> None:
    pod = pod_spec(kind)
    context = pod["securityContext"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "projected", "secret"}
    assert all(set(volume) - {"name"} <= allowed_volumes for volume in pod["volumes"])
    for container in pod["containers"] + pod.get("initContainers", []):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert not security.get("privileged") and security.get("runAsUser", 1) != 0
        assert "seccompProfile" not in security  # the pod's RuntimeDefault applies
        assert not any("hostPort" in port for port in container.get("ports", []))


@pytest.mark.parametrize("kind", PODS)
def test_the_root_filesystem_is_read_only_and_tmp_an_empty_dir(kind: str) -> None:
    """The temp dir is the only writable place, and Faust's data directory
    (TOUCHSTREAM_DATA_DIR, by default in the temp dir) is in it."""
    pod = pod_spec(kind)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {
        mount["mountPath"] for mount in container["volumeMounts"] if "emptyDir" in volumes[mount["name"]]
    }
    assert writable == {"/tmp"}
    assert all(
        mount.get("readOnly") for mount in container["volumeMounts"] if mount["mountPath"] not in writable
    )
    data_dir = configmap_env().get(env_name("data_dir"), "/tmp/")
    assert data_dir.startswith("/tmp/")


def test_the_probes_use_health_and_ready_on_the_web_port() -> None:
    [container] = pod_spec()["containers"]
    probes = {
        kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert {kind: get["path"] for kind, get in probes.items()} == {
        "startupProbe": "/health",
        "livenessProbe": "/health",
        "readinessProbe": "/ready",
    }
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    web_port = int(configmap_env()[env_name("web_port")])
    assert all(ports[get["port"]] == web_port for get in probes.values())
    service = one("Service")
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(web_port)
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["metrics"]
    assert ports["metrics"] == web_port


def test_the_selectors_match_the_worker_pods_only() -> None:
    labels, job_labels = pod_labels(), pod_labels("Job")
    deployment, budget, service = one("Deployment"), one("PodDisruptionBudget"), one("Service")
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert selects(service["spec"]["selector"], labels)
    assert not selects(budget["spec"]["selector"]["matchLabels"], job_labels)
    assert not selects(service["spec"]["selector"], job_labels)
    spread = pod_spec()["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread:
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert selects(constraint["labelSelector"]["matchLabels"], labels)


def test_the_settings_are_settings_and_the_kafka_secrets_optional() -> None:
    """Every variable of the ConfigMap and the containers is a Touchstream setting, and the
    ConfigMap's values parse; the Kafka SASL password and TLS files come from Secrets that
    may be absent (the manifests work without SASL); the replicas fit the partitions."""
    data = configmap_env()
    settings = Settings.from_env(data)
    assert settings.replication_factor == 3 and settings.web_host == "0.0.0.0"
    for kind in PODS:
        [container] = pod_spec(kind)["containers"]
        variables = set(data) | {variable["name"] for variable in container["env"]}
        assert variables <= {name for name, _, _ in describe()}, kind
        refs = secret_refs(container)
        assert refs[env_name("kafka_sasl_password")]["optional"] is True, kind
        assert set(refs) - {env_name("kafka_sasl_password")} <= {env_name("redis_url")}, kind
        [tls] = [volume for volume in pod_spec(kind)["volumes"] if "secret" in volume]
        assert tls["secret"]["optional"] is True, kind
        [mount] = [m for m in container["volumeMounts"] if m["name"] == tls["name"]]
        assert f'"{mount["mountPath"]}/ca.crt"' in (K8S / "configmap.yaml").read_text(), kind
    assert not secret_refs(pod_spec()["containers"][0])[env_name("redis_url")].get("optional")
    assert one("Deployment")["spec"]["replicas"] <= settings.partitions


def test_the_topics_job_creates_the_topics_with_the_workers_image() -> None:
    [job] = pod_spec("Job")["containers"]
    [worker] = pod_spec()["containers"]
    assert job["image"] == worker["image"]
    assert pod_spec("Job")["restartPolicy"] == "Never"
    command = job["command"]
    assert command[:3] == ["touchstream", "topics", "create"]
    min_insync = int(command[command.index("--min-insync-replicas") + 1])
    assert 1 < min_insync < Settings.from_env(configmap_env()).replication_factor


# --- Docker -------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_builds_one_image_and_publishes_on_loopback_only() -> None:
    services = compose()["services"]
    assert [name for name, service in services.items() if "build" in service] == ["worker"]
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published["kafka"] == ["127.0.0.1:9092:29092"]
    assert published["redis"] == ["127.0.0.1:6379:6379"]
    assert published["worker"] == ["127.0.0.1:6066:6066"]
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports)


def test_compose_checks_the_worker_on_ready() -> None:
    services = compose()["services"]
    worker = services["worker"]
    check = " ".join(worker["healthcheck"]["test"])
    assert f"http://127.0.0.1:{worker['environment']['TOUCHSTREAM_WEB_PORT']}/ready" in check
    assert services["simulator"]["depends_on"]["worker"]["condition"] == "service_healthy"
    assert services["simulator"]["healthcheck"] == {"disable": True}


def dockerfile() -> str:
    return (ROOT / "deploy" / "Dockerfile").read_text()


def test_the_image_checks_the_worker_health() -> None:
    [check] = re.findall(r"^HEALTHCHECK ((?:.*\\\n)*.*)", dockerfile(), re.MULTILINE)
    assert "--start-period=" in check
    assert "http://127.0.0.1:${TOUCHSTREAM_WEB_PORT:-6066}/health" in check
    assert "ENV" in dockerfile() and "TOUCHSTREAM_WEB_PORT=6066" in dockerfile()


def test_dockerignore_keeps_out_the_local_state_and_nothing_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")]  # no exceptions: the check below holds
    assert {".git", ".venv", "*.egg-info", "bench-results.json", "tests"} <= set(patterns)
    copied = [
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile(), re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert copied == ["pyproject.toml", "README.md", "LICENSE", "constraints.txt", "stream"]
    for source in copied:
        assert (ROOT / source).exists()
        assert not [p for p in patterns if fnmatch.fnmatch(source, p.removeprefix("**/"))], source
