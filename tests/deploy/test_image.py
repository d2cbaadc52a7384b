"""The container image (Containerfile) holds everything the portal runs from, as a non-root user,
with its front-end assets bundled from npm (no CDN).

No container engine runs on these machines, so the build is rehearsed instead: the runtime stage's
COPY instructions are carried out into a directory (build-context sources filtered by
.dockerignore, the `assets` stage's outputs from `make assets`, the `specs` context from
../shared/specs), and the portal is started from that directory alone: Django's checks, every
template, the static files the pages link, the Flux CRDs its manifests are validated against.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
SPECS = ROOT.parent / "shared" / "specs"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def ignored(path: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        pattern = pattern.lstrip("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in path.split("/")):
                return True
        elif fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def source_root(stage: str | None) -> tuple[Path, str]:
    """Where a COPY's sources come from here, and the prefix that maps onto it."""
    if stage is None:
        return ROOT, ""
    if stage == "assets":  # WORKDIR /src of the assets stage: `make assets` made the same files
        return ROOT, "/src/"
    if stage == "specs":
        return SPECS, ""
    raise AssertionError(f"COPY --from={stage} is not rehearsed here")


def lay_out(target: Path) -> Path:
    """Carry out the runtime stage's COPY instructions; the WORKDIR it ends in."""
    patterns = dockerignore()
    workdir = Path("/")
    for word, rest in stages()[-1]:
        if word == "WORKDIR":
            workdir = workdir / rest
            continue
        if word != "COPY":
            continue
        args = shlex.split(rest)
        options = [a for a in args if a.startswith("--")]
        *sources, destination = [a for a in args if not a.startswith("--")]
        stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
        if stage == "python":  # the virtualenv: this test runs on the project's own
            continue
        root, prefix = source_root(stage)
        dest = target / (workdir / destination).relative_to("/")
        for source in sources:
            assert source.startswith(prefix), f"COPY {source}: expected under {prefix}"
            relative = source[len(prefix) :].rstrip("/")
            origin = root / relative
            assert origin.exists(), f"COPY {source}: {origin} does not exist"
            if stage is None:
                assert not ignored(relative, patterns), f"COPY {source}: .dockerignore drops it"
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    dest,
                    dirs_exist_ok=True,
                    ignore=lambda d, names, base=root, context=stage is None: [
                        n
                        for n in names
                        if context and ignored(str((Path(d) / n).relative_to(base)), patterns)
                    ],
                )
            else:
                target_file = dest / origin.name if destination.endswith("/") else dest
                target_file.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target_file)
    return target / workdir.relative_to("/")


def run_python(args: list[str], *, cwd: Path, env: dict[str, str]) -> Any:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_the_image_runs_as_an_unprivileged_user_and_serves_the_probed_port():
    runtime = stages()[-1]
    (user,) = [rest for word, rest in runtime if word == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000
    assert [w for w, _ in runtime].index("USER") > max(
        i for i, (w, _) in enumerate(runtime) if w in ("RUN", "COPY")
    ), "USER comes after every step that needs root"
    (cmd,) = [json.loads(rest) for word, rest in runtime if word == "CMD"]
    assert cmd[:3] == ["python", "manage.py", "serve"] and "0.0.0.0" in cmd
    (expose,) = [rest for word, rest in runtime if word == "EXPOSE"]
    assert cmd[cmd.index("--port") + 1] == expose
    # the Kustomize base runs every pod as this user
    for path in (ROOT / "deploy" / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec")
            if spec:
                context = spec["securityContext"]
                assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid)


def test_the_runtime_installs_jemalloc_for_the_web_workers():
    # `manage.py serve` preloads it in its workers when installed: glibc's malloc fragments under
    # many concurrent users (tests/core/test_serving.py checks the workers map it)
    runtime = stages()[-1]
    installs = [rest for word, rest in runtime if word == "RUN" and "apt-get install" in rest]
    assert any(re.search(r"\blibjemalloc2\b", rest) for rest in installs)


def test_the_front_end_is_bundled_from_npm_with_the_makefiles_command_and_no_cdn():
    text = CONTAINERFILE.read_text()
    assert not re.search(r"\b(curl|wget)\b|ADD\s+https?://", text), "nothing fetched by URL"
    (assets,) = [s for s in stages() if s[0][1].endswith(" AS assets")]
    runs = [rest for word, rest in assets if word == "RUN"]
    assert runs == ["npm ci --no-audit --no-fund --loglevel=error", "npm run --silent build"]
    # `make assets` runs the same package.json script: one definition of the bundle
    assert "npm run --silent build" in (ROOT / "Makefile").read_text()
    build = json.loads((ROOT / "package.json").read_text())["scripts"]["build"]
    assert "--outfile=build/static/" in build and build.startswith("esbuild ")
    # the build context leaves local state and caches out
    patterns = dockerignore()
    for path in (".git", ".venv", "node_modules", "var", "build", "tests"):
        assert ignored(path, patterns), path


@pytest.mark.skipif(not SPECS.is_dir(), reason="../shared/specs (the `specs` build context) absent")
def test_the_portal_starts_from_what_the_image_copies(tmp_path):
    if not (ROOT / "build" / "static" / "marketplace" / "editor.js").is_file():
        pytest.skip("run `make assets` first: the image's assets stage builds the same bundle")
    app = lay_out(tmp_path / "image")
    assert sorted(p.name for p in app.iterdir()) == [
        "accounts",
        "billing",
        "build",
        "catalyst_portal",
        "core",
        "gitops",
        "manage.py",
        "marketplace",
        "node_modules",
        "orgs",
        "rbac",
        "specs",
        "static",
        "templates",
    ]
    assert not list(app.rglob("__pycache__")) and not list(app.rglob("test_*.py"))
    runtime_env = dict(
        re.findall(r"(\w+)=(\S+)", " ".join(rest for w, rest in stages()[-1] if w == "ENV"))
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DJANGO_")) and key not in {"DATABASE_URL", "VALKEY_URL"}
    }
    env.update(
        {
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "FLUX_CRDS_DIR": str(app / runtime_env["FLUX_CRDS_DIR"].removeprefix("/app/")),
            "CHART_SPECS_DIR": str(app / runtime_env["CHART_SPECS_DIR"].removeprefix("/app/")),
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "catalyst_portal.settings",
        }
    )
    check = run_python(["manage.py", "check"], cwd=app, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    probe = """
import django
django.setup()
from pathlib import Path
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template import engines
from gitops.validation import _validators
root = Path.cwd().resolve()
assert Path(settings.BASE_DIR).resolve() == root, settings.BASE_DIR
linked = set()
for template in root.rglob("templates/**/*.html"):
    source = template.read_text()
    engines["django"].from_string(source)  # every template compiles (tags and filters load)
    linked.update(__import__("re").findall(r"{% static ['\\"]([^'\\"]+)['\\"] %}", source))
missing = sorted(p for p in linked if not finders.find(p))
assert not missing, missing
for path in ("vendor/htmx/htmx.min.js", "vendor/htmx-ext-sse/sse.js", "marketplace/editor.js"):
    found = finders.find(path)
    assert found and Path(found).resolve().is_relative_to(root), path
kinds = {kind for _, kind in _validators()}
assert {"HelmRelease", "Kustomization", "GitRepository"} <= kinds, kinds
print("ok", len(linked))
"""
    result = run_python(["-c", probe], cwd=app, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok ")
    assert int(result.stdout.split()[1]) >= 5  # the pages link their CSS, htmx, the editor
