"""deploy/base renders with `kubectl kustomize`, every object validates against the Kubernetes
schemas (kubernetes-validate), and the manifests agree with the application: every setting
settings.py reads is wired (ConfigMap, Secret, or deliberately left to its default), probes hit
/healthz and /readyz on the served port within the app's own timeouts, and each pod's grace period
covers the app's shutdown.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "base"
SECRET_EXAMPLE = ROOT / "deploy" / "secrets.env.example"
SECRET_NAME = "catalyst-portal-secrets"
ENV_READERS = {
    "env_str",
    "env_bool",
    "env_int",
    "env_list",
    "env_int_list",
    "env_url",
    "database_from_url",
}
# Settings deliberately left to their default in a Sovereign, each with its reason. A new setting
# goes into config.env (or the Secret) or here: the wiring test fails until it does.
DEFAULTED = {
    "FLUX_KUBECONFIG": "watch_flux uses its in-cluster service account (FLUX_IN_CLUSTER=true)",
    "FLUX_CONTEXTS": "watch_flux uses its in-cluster service account (FLUX_IN_CLUSTER=true)",
    "MANAGEMENT_ORG": "unset means the oldest internal Organization, which is the Sovereign's own",
}
# The number of /readyz checks (core.health: database, Valkey, and gitops' Git check).
READINESS_CHECKS = 3
KUBERNETES_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]


@cache
def kubectl() -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip(
            "kubectl is not installed: apt-get install -y kubernetes-client (.ci/run installs it)"
        )
    return binary


@cache
def rendered(path: Path = BASE) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered() if doc["kind"] == kind}


def config() -> dict[str, str]:
    (configmap,) = objects("ConfigMap").values()
    assert configmap["data"] == env_file_keys(BASE / "config.env")
    return configmap["data"]


def pod_specs() -> dict[str, dict[str, Any]]:
    specs = {name: d["spec"]["template"]["spec"] for name, d in objects("Deployment").items()}
    specs.update({name: j["spec"]["template"]["spec"] for name, j in objects("Job").items()})
    return specs


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def web() -> dict[str, Any]:
    return objects("Deployment")["catalyst-portal-web"]["spec"]["template"]["spec"]


def env_file_keys(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def settings_variables() -> set[str]:
    """Every environment variable catalyst_portal/settings.py reads (its env_* calls)."""
    tree = ast.parse((ROOT / "catalyst_portal" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ENV_READERS:
            first = node.args[0]
            assert isinstance(first, ast.Constant), f"line {node.lineno}: a computed variable name"
            names.add(first.value)
    return names


def test_every_object_validates_against_the_kubernetes_schemas():
    kinds = sorted({doc["kind"] for doc in rendered()})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for version in KUBERNETES_VERSIONS:
        for doc in rendered():
            kubernetes_validate.validate(doc, version, strict=True)  # raises on any error
    namespaced = [d for d in rendered() if not d["kind"].startswith("Cluster")]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"catalyst-system"}


def test_the_validator_refuses_a_broken_object():
    """The validation above has teeth: a misspelt field and a wrong type are refused."""
    broken = yaml.safe_load(yaml.safe_dump(objects("Deployment")["catalyst-portal-web"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(objects("Deployment")["catalyst-portal-web"]))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_each_process_runs_its_command():
    commands = {
        name: " ".join(containers(spec)[0]["command"]) for name, spec in pod_specs().items()
    }
    assert commands == {
        "catalyst-portal-web": "python manage.py serve --host 0.0.0.0 --port 8000",
        "catalyst-portal-worker": (
            "celery --app=catalyst_portal worker --loglevel=INFO --concurrency=4 "
            "--without-gossip --without-mingle"
        ),
        "catalyst-portal-beat": (
            "celery --app=catalyst_portal beat --loglevel=INFO "
            "--schedule=/var/lib/catalyst-portal/celerybeat-schedule"
        ),
        "catalyst-portal-watch-flux": "python manage.py watch_flux",
        "catalyst-portal-consume-usage": "python manage.py consume_usage",
        "catalyst-portal-migrate": "python manage.py migrate --noinput",
    }
    job = pod_specs()["catalyst-portal-migrate"]
    assert job["containers"][0]["command"] == ["python", "manage.py", "sync_catalog"]
    deployments = objects("Deployment")
    # exactly one beat, never two during a rollout
    beat = deployments["catalyst-portal-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    # watchers are active/standby through a fenced lease: a standby is ready when the leader dies
    watcher = deployments["catalyst-portal-watch-flux"]["spec"]
    assert watcher["replicas"] == 2 and watcher["strategy"]["type"] == "RollingUpdate"


def test_every_setting_is_wired_to_the_configmap_the_secret_or_deliberately_defaulted():
    """Read from the files (no kubectl needed): the rendering tests check the ConfigMap is made
    from config.env."""
    read = settings_variables()
    configured = set(env_file_keys(BASE / "config.env"))
    secret = set(env_file_keys(SECRET_EXAMPLE))
    unwired = sorted(read - configured - secret - set(DEFAULTED))
    assert unwired == [], (
        f"settings.py reads {unwired}: give each a value in deploy/base/config.env (or the Secret "
        "in deploy/secrets.env.example), or add it to DEFAULTED here with the reason"
    )
    assert sorted((configured | secret) - read) == [], "a value for a setting nobody reads"
    assert configured.isdisjoint(secret) and configured.isdisjoint(DEFAULTED)
    assert set(DEFAULTED) <= read
    # Secrets never sit in the ConfigMap, and the committed example holds no value.
    assert not [k for k in configured if re.search(r"(SECRET|TOKEN|PASSWORD)(_KEY)?$", k)]
    assert {"SECRET_KEY", "DATABASE_URL", "VALKEY_URL"} <= secret
    assert set(env_file_keys(SECRET_EXAMPLE).values()) == {""}
    # A per-process override names a real setting.
    for path in BASE.glob("*.yaml"):
        overrides = re.findall(r"^\s+- name: ([A-Z_]+)$", path.read_text(), re.MULTILINE)
        assert set(overrides) <= configured, path.name


def test_every_container_reads_the_config_and_the_secret_and_runs_as_nobody():
    (configmap_name,) = objects("ConfigMap")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        writable = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            assert container["envFrom"] == [
                {"configMapRef": {"name": configmap_name}},
                {"secretRef": {"name": SECRET_NAME}},
            ], where
            assert container["image"] == f"catalyst-portal:{version}", where
            requests = container["resources"]["requests"]
            assert requests["cpu"] and requests["memory"], where
            assert container["resources"]["limits"]["memory"], where
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            # What the process writes lies on a writable volume: PORTAL_VAR_DIR, /tmp.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(config()["PORTAL_VAR_DIR"]) in writable, where
            assert mounts.get("/tmp") in writable, where
    assert config()["GIT_ROOT"].startswith(config()["PORTAL_VAR_DIR"] + "/")
    # Only the Flux watcher gets an API token.
    tokens = {n for n, s in pod_specs().items() if s.get("automountServiceAccountToken", True)}
    assert tokens == {"catalyst-portal-watch-flux"}


def test_web_probes_hit_healthz_and_readyz_on_the_served_port_within_the_app_timeouts():
    (container,) = web()["containers"]
    port = container["command"][container["command"].index("--port") + 1]
    (named,) = container["ports"]
    assert str(named["containerPort"]) == port
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": named["name"]}
    readiness = container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": named["name"]}
    # /readyz runs its checks one after the other, each bounded by the setting.
    budget = READINESS_CHECKS * int(config()["PORTAL_READINESS_TIMEOUT_SECONDS"])
    assert readiness["timeoutSeconds"] > budget
    (service,) = objects("Service").values()
    assert service["spec"]["ports"][0]["targetPort"] == named["name"]
    assert service["spec"]["selector"] == web_selector()


def web_selector() -> dict[str, str]:
    return objects("Deployment")["catalyst-portal-web"]["spec"]["selector"]["matchLabels"]


def test_the_grace_period_covers_the_apps_shutdown():
    spec = web()
    (container,) = spec["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = int(config()["PORTAL_SHUTDOWN_GRACE_SECONDS"])
    # preStop pause (endpoints updated), then uvicorn's grace, then a margin before SIGKILL
    assert spec["terminationGracePeriodSeconds"] >= pause + grace + 5
    worker = pod_specs()["catalyst-portal-worker"]
    # a task cut short is due again after its lease: let the running ones finish within two
    assert worker["terminationGracePeriodSeconds"] >= 2 * int(config()["OUTBOX_LEASE_SECONDS"])
    for spec in pod_specs().values():
        assert spec["terminationGracePeriodSeconds"] >= 30


def run_python(args: list[str], env: dict[str, str]) -> Any:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_settings_load_from_the_configmap_and_pass_the_deployment_checklist(tmp_path):
    """The ConfigMap's values are what settings.py accepts (a malformed one stops start-up), and
    with placeholder secrets they pass `manage.py check --deploy` with no warning."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DJANGO_ALLOW")) and key not in settings_variables()
    }
    env.update(config())
    env.update(
        {
            "SECRET_KEY": "k3Yq9-pL2mZx8VbN4cRt7WsE1uHj6GfD0aQoKiXyLz5Mn2Bv8CeP",
            "DATABASE_URL": "postgres://portal:password@postgres.invalid:5432/portal",
            "VALKEY_URL": "redis://valkey.invalid:6379/0",
            "NATS_URL": "nats://nats.invalid:4222",
            "GITEA_TOKEN": "placeholder",
            "GITEA_WEBHOOK_SECRET": "placeholder",
            "OIDC_CLIENT_SECRET": "placeholder",
            # the container's writable volume, here a temporary directory
            "PORTAL_VAR_DIR": str(tmp_path),
            "GIT_ROOT": str(tmp_path / "git"),
        }
    )
    probe = (
        "from django.conf import settings as s; "
        "print(s.WEB_WORKERS, s.WEB_SHUTDOWN_GRACE_SECONDS, s.CELERY_TASK_ALWAYS_EAGER, "
        "s.DB_POOL_MAX, s.HTTPS, s.LOG_FORMAT, s.FLUX_IN_CLUSTER)"
    )
    result = run_python(
        ["-c", f"import django; django.setup(); {probe}"],
        {**env, "DJANGO_SETTINGS_MODULE": "catalyst_portal.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "20", "False", "8", "True", "json", "True"]
    # the checks read the database (the API schema's hooks): a local one, migrated, stands in
    # for PostgreSQL
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    migrate = run_python(["manage.py", "migrate", "--noinput", "-v0"], env)
    assert migrate.returncode == 0, migrate.stderr
    check = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_database_connection_budget_in_the_readme_holds_at_full_scale():
    """PostgreSQL connections with every autoscaler at its maximum: the README's sizing figure."""
    deployments = objects("Deployment")
    scale = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in objects("HorizontalPodAutoscaler").values()
    }
    pool = int(config()["PORTAL_DB_POOL_MAX"])
    total = 0
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        own = {e["name"]: e["value"] for e in container.get("env", [])}
        per_process = int(own.get("PORTAL_DB_POOL_MAX", pool))
        command = container["command"]
        if "serve" in command:
            processes = int(config()["PORTAL_WEB_WORKERS"])
        elif "worker" in command:  # prefork children and the main process
            concurrency = next(c for c in command if c.startswith("--concurrency="))
            processes = int(concurrency.split("=")[1]) + 1
        else:
            processes = 1
        total += scale.get(name, deployment["spec"]["replicas"]) * processes * per_process
    total += 2  # the migration Job
    readme = (ROOT / "README.md").read_text()
    assert f"at most **{total}** PostgreSQL connections" in readme


def test_a_site_overlay_changes_its_values_and_image_and_keeps_the_rest():
    overlay = ROOT / "deploy" / "overlays" / "example"
    docs = rendered(overlay)
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    site = env_file_keys(overlay / "site.env")
    assert configmap["data"] == {**config(), **site}
    assert configmap["data"]["ALLOWED_HOSTS"] != config()["ALLOWED_HOSTS"]
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in containers(d["spec"]["template"]["spec"])
    }
    assert images == {"registry.sovereign.example/openova/catalyst-portal:0.1.0"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
