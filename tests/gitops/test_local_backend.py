"""The local bare-repo backend: level-triggered sync, compare-and-swap under threads, validation."""

from __future__ import annotations

import threading

import pytest
import yaml
from django.conf import settings

from gitops.backend import Author, GitConflict
from gitops.local import LocalGitBackend
from gitops.sync import Desired, sync
from gitops.validation import ManifestError
from tests.gitutil import commits, files, git, repo_path, show

AUTHOR = Author("Owner Person", "owner@example.test")


def local() -> LocalGitBackend:
    return LocalGitBackend(settings.GIT_ROOT, committer=Author("Catalyst Portal", "portal@x.test"))


def kustomization(name: str, **spec_overrides) -> dict:
    spec = {
        "interval": "5m",
        "path": f"./apps/{name}",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "catalyst-config"},
        **spec_overrides,
    }
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


def config(files: dict[str, str], root: str = "apps/") -> Desired:
    return Desired(owner="system", repo="catalyst-config", branch="main", root=root, files=files)


def test_second_sync_is_a_noop():
    files_ = {"apps/web.yaml": yaml.safe_dump(kustomization("web"))}

    first = sync(config(files_), author=AUTHOR, message="apps.create: web", git=local())
    second = sync(config(files_), author=AUTHOR, message="apps.create: web", git=local())

    assert first.committed and not second.committed and second.head == first.head
    assert commits() == ["apps.create: web", "Initial commit"]
    assert yaml.safe_load(show("apps/web.yaml"))["spec"]["sourceRef"]["name"] == "catalyst-config"
    assert git("system", "catalyst-config", "log", "-1", "--format=%an|%cn").strip() == (
        "Owner Person|Catalyst Portal"
    )


def test_compare_and_swap_refuses_a_stale_head():
    backend = local()
    backend.ensure_org("system")
    backend.ensure_repo("system", "catalyst-config")
    head = backend.read_tree("system", "catalyst-config", "main", "").head
    kwargs = {"expected_head": head, "author": AUTHOR}

    backend.commit("system", "catalyst-config", "main", changes={"a": b"a"}, message="a", **kwargs)
    with pytest.raises(GitConflict):
        backend.commit(
            "system", "catalyst-config", "main", changes={"b": b"b"}, message="b", **kwargs
        )

    assert commits() == ["a", "Initial commit"] and files() == ["README.md", "a"]


def test_concurrent_syncs_lose_nothing():
    backend = local()
    backend.ensure_org("system")
    backend.ensure_repo("system", "catalyst-config")
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            desired = config({f"teams/t{i}/owner.txt": f"team {i}\n"}, root=f"teams/t{i}/")
            sync(desired, author=AUTHOR, message=f"team {i}", git=local())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(commits()) == sorted(["Initial commit", *(f"team {i}" for i in range(workers))])
    assert files() == ["README.md", *(f"teams/t{i}/owner.txt" for i in range(workers))]
    # a linear history: every commit has one parent, none was overwritten
    parents = git("system", "catalyst-config", "log", "--format=%p", "main").split("\n")
    assert len([p for p in parents if len(p.split()) == 1]) == workers


def test_invalid_flux_manifest_is_refused_naming_file_and_field():
    broken = kustomization("web")
    del broken["spec"]["sourceRef"]
    desired = config(
        {
            "apps/ok.yaml": yaml.safe_dump(kustomization("ok")),
            "apps/web.yaml": yaml.safe_dump(broken),
        }
    )

    with pytest.raises(ManifestError) as caught:
        sync(desired, author=AUTHOR, message="apps.create: web", git=local())

    message = str(caught.value)
    assert "apps/web.yaml[0] Kustomization" in message
    assert "spec: 'sourceRef' is a required property" in message
    assert "apps/ok.yaml" not in message
    assert not repo_path("system", "catalyst-config").exists()  # nothing written, not even a repo


def test_invalid_field_type_is_refused_and_existing_state_kept():
    sync(
        config({"apps/web.yaml": yaml.safe_dump(kustomization("web"))}),
        author=AUTHOR,
        message="ok",
        git=local(),
    )
    bad = kustomization("web", prune="yes")

    with pytest.raises(
        ManifestError,
        match=r"apps/web.yaml\[0\] Kustomization: spec.prune: 'yes' is not of type 'boolean'",
    ):
        sync(
            config({"apps/web.yaml": yaml.safe_dump(bad)}),
            author=AUTHOR,
            message="bad",
            git=local(),
        )

    assert commits() == ["ok", "Initial commit"]
    assert yaml.safe_load(show("apps/web.yaml"))["spec"]["prune"] is True


def test_ref_locked_by_another_process_is_a_conflict_not_a_crash():
    backend = local()
    backend.ensure_org("system")
    backend.ensure_repo("system", "catalyst-config")
    head = backend.read_tree("system", "catalyst-config", "main", "").head
    lock = repo_path("system", "catalyst-config") / "refs" / "heads" / "main.lock"
    lock.write_text("held by another worker\n")

    with pytest.raises(GitConflict, match="another writer"):
        backend.commit(
            "system",
            "catalyst-config",
            "main",
            changes={"a": b"a"},
            expected_head=head,
            author=AUTHOR,
            message="a",
        )

    lock.unlink()
    assert commits() == ["Initial commit"]
    assert sync(config({"apps/a.txt": "a\n"}), author=AUTHOR, message="a", git=backend).committed


def test_two_processes_creating_the_same_repo_leave_no_tmp_directory(tmp_path):
    """Another process creates the repo while this one is building it: this one gives way (no
    error, nothing left behind) and the repo is the other's."""
    import subprocess
    import sys

    root = tmp_path / "git"
    other = (
        "from gitops.local import LocalGitBackend; from gitops.backend import Author; "
        f"LocalGitBackend({str(root)!r}, committer=Author('o', 'o@x')).ensure_repo('acme', 'race')"
    )

    class Racing(LocalGitBackend):
        raced = False

        def _write_commit(self, *args, **kwargs):  # while this process builds its copy
            if not Racing.raced:
                Racing.raced = True
                subprocess.run([sys.executable, "-c", other], check=True, cwd=settings.BASE_DIR)
            return super()._write_commit(*args, **kwargs)

    git_backend = Racing(root, committer=Author("t", "t@x"))
    git_backend.ensure_org("acme")
    git_backend.ensure_repo("acme", "race")
    assert Racing.raced
    assert sorted(p.name for p in (root / "acme").iterdir()) == ["race.git"]
    assert git_backend.head("acme", "race", "main") is not None
