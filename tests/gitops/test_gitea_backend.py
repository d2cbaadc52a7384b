"""The Gitea backend through real HTTP against the emulator (every exchange checked against the spec)."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
import yaml
from werkzeug.wrappers import Response

from gitops.backend import Author, GitConflict, GitError
from gitops.gitea import GiteaBackend
from gitops.sync import Desired, plan, sync

AUTHOR = Author("Owner Person", "owner@example.test")
COMMITTER = Author("Catalyst Portal", "portal@catalyst.local")


def backend_for(gitea, *, token: str | None = None, timeout: float = 5) -> GiteaBackend:
    return GiteaBackend(gitea.url, token or gitea.token, timeout=timeout, committer=COMMITTER)


def git(gitea, owner: str, repo: str, *args: str) -> str:
    """Read the emulator's bare repo with the git CLI (an independent reader)."""
    return subprocess.run(
        ["git", "--git-dir", str(gitea.repo_path(owner, repo)), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def kustomization(name: str, path: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system"},
            "spec": {
                "interval": "5m",
                "path": path,
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "catalyst-config"},
            },
        }
    )


def desired(files: dict[str, str], *, branch: str = "develop", root: str = "envs/dev/") -> Desired:
    return Desired(owner="acme", repo="apps", branch=branch, root=root, files=files)


def posts(gitea) -> list[str]:
    return [f"{e.method} {e.path}" for e in gitea.exchanges if e.method != "GET"]


def test_sync_creates_org_repo_branch_and_commits_then_second_sync_is_noop(gitea):
    git_backend = backend_for(gitea)
    files = {
        "envs/dev/app.yaml": kustomization("app", "./envs/dev/app"),
        "envs/dev/README.md": "dev environment\n",
    }

    result = sync(
        desired(files), author=AUTHOR, message="deploy: app\n\nAudit-Event: 7\n", git=git_backend
    )

    assert result.committed and set(result.changes) == set(files)
    assert "acme" in gitea.orgs and gitea.orgs["acme"]["visibility"] == "private"
    assert gitea.repos[("acme", "apps")]["default_branch"] == "main"
    assert gitea.log("acme", "apps", "main") == ["Initial commit"]  # auto_init README only
    assert gitea.log("acme", "apps", "develop") == ["deploy: app", "Initial commit"]
    assert git(gitea, "acme", "apps", "rev-parse", "develop").strip() == result.head
    assert (
        git(gitea, "acme", "apps", "show", "develop:envs/dev/app.yaml")
        == files["envs/dev/app.yaml"]
    )
    assert git(
        gitea, "acme", "apps", "log", "-1", "--format=%an <%ae>|%cn|%b", "develop"
    ).strip() == ("Owner Person <owner@example.test>|Catalyst Portal|Audit-Event: 7")
    assert posts(gitea) == [
        "POST /api/v1/orgs",
        "POST /api/v1/orgs/acme/repos",
        "POST /api/v1/repos/acme/apps/branches",
        "POST /api/v1/repos/acme/apps/contents",
    ]

    # the same desired state again, from a fresh process (no cache): reads only, no commit
    before = len(gitea.exchanges)
    again = sync(desired(files), author=AUTHOR, message="deploy: app", git=backend_for(gitea))
    assert not again.committed and again.head == result.head and again.changes == {}
    assert gitea.log("acme", "apps", "develop") == ["deploy: app", "Initial commit"]
    assert all(e.method == "GET" for e in gitea.exchanges[before:])
    assert plan(desired(files), git=git_backend).changes == {}


def test_sync_updates_and_deletes_only_under_root(gitea):
    git_backend = backend_for(gitea)
    sync(
        desired(
            {"envs/dev/a.yaml": kustomization("a", "./a"), "envs/dev/b.txt": "b\n"}, branch="main"
        ),
        author=AUTHOR,
        message="first",
        git=git_backend,
    )
    sync(
        desired({"envs/prod/keep.txt": "keep\n"}, branch="main", root="envs/prod/"),
        author=AUTHOR,
        message="other root",
        git=git_backend,
    )

    result = sync(
        desired({"envs/dev/a.yaml": kustomization("a", "./a2")}, branch="main"),
        author=AUTHOR,
        message="second",
        git=git_backend,
    )

    assert result.committed
    assert result.changes == {
        "envs/dev/a.yaml": kustomization("a", "./a2").encode(),
        "envs/dev/b.txt": None,
    }
    assert gitea.tree("acme", "apps") == ["README.md", "envs/dev/a.yaml", "envs/prod/keep.txt"]
    assert gitea.read("acme", "apps", "envs/dev/a.yaml") == kustomization("a", "./a2").encode()
    # one update (with the old blob sha) and one delete, in one commit
    last_post = [e for e in gitea.exchanges if e.method == "POST"][-1]
    assert last_post.path == "/api/v1/repos/acme/apps/contents"
    assert gitea.log("acme", "apps") == ["second", "other root", "first", "Initial commit"]
    # the tree the backend remembered after committing equals the one Gitea reports
    before = len(gitea.exchanges)
    remembered = git_backend.read_tree("acme", "apps", "main", "")
    assert [e.path for e in gitea.exchanges[before:]] == ["/api/v1/repos/acme/apps/branches/main"]
    assert remembered == backend_for(gitea).read_tree("acme", "apps", "main", "")
    assert git_backend.read_file("acme", "apps", "main", "envs/prod/keep.txt") == b"keep\n"
    assert git_backend.read_file("acme", "apps", "main", "envs/dev/b.txt") is None


def test_commit_on_a_moved_branch_is_a_conflict_and_writes_nothing(gitea):
    git_backend = backend_for(gitea)
    git_backend.ensure_org("acme")
    git_backend.ensure_repo("acme", "apps")
    tree = git_backend.read_tree("acme", "apps", "main", "")
    gitea.commit_directly("acme", "apps", "main", {"other.txt": b"someone else\n"})

    with pytest.raises(GitConflict, match="moved"):
        git_backend.commit(
            "acme",
            "apps",
            "main",
            changes={"mine.txt": b"mine\n"},
            expected_head=tree.head,
            author=AUTHOR,
            message="mine",
        )

    assert gitea.log("acme", "apps") == ["outside change", "Initial commit"]
    assert gitea.read("acme", "apps", "mine.txt") is None


def race_once(gitea, path: str, content: bytes):
    """A before-hook: just ahead of the portal's commit, someone else changes `path`."""
    fired = threading.Event()

    def hook(request):
        if request.method == "POST" and request.path.endswith("/contents") and not fired.is_set():
            fired.set()
            gitea.commit_directly("acme", "apps", "main", {path: content}, message="racing change")
        return None

    gitea.before.append(hook)
    return fired


def test_gitea_refusal_after_a_race_is_a_conflict(gitea):
    git_backend = backend_for(gitea)
    git_backend.ensure_org("acme")
    git_backend.ensure_repo("acme", "apps")
    tree = git_backend.read_tree("acme", "apps", "main", "")
    fired = race_once(gitea, "README.md", b"racing readme\n")

    with pytest.raises(GitConflict, match="sha does not match"):
        git_backend.commit(
            "acme",
            "apps",
            "main",
            changes={"README.md": b"portal readme\n"},
            expected_head=tree.head,
            author=AUTHOR,
            message="portal",
        )

    assert fired.is_set()
    assert gitea.log("acme", "apps") == ["racing change", "Initial commit"]
    assert gitea.read("acme", "apps", "README.md") == b"racing readme\n"
    refusal = [e for e in gitea.exchanges if e.method == "POST" and e.status == 422]
    assert len(refusal) == 1


def test_sync_rereads_after_a_race_and_converges(gitea):
    git_backend = backend_for(gitea)
    sync(
        desired({"envs/dev/x.txt": "one\n"}, branch="main"),
        author=AUTHOR,
        message="one",
        git=git_backend,
    )
    race_once(gitea, "envs/dev/x.txt", b"theirs\n")

    result = sync(
        desired({"envs/dev/x.txt": "two\n"}, branch="main"),
        author=AUTHOR,
        message="two",
        git=git_backend,
    )

    assert result.committed
    assert gitea.read("acme", "apps", "envs/dev/x.txt") == b"two\n"
    assert gitea.log("acme", "apps") == ["two", "racing change", "one", "Initial commit"]


def test_concurrent_syncs_of_different_roots_lose_nothing(gitea):
    shared = backend_for(gitea)  # one backend for all threads, as gitops.sync.backend() is
    shared.ensure_org("acme")
    shared.ensure_repo("acme", "apps")
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            sync(
                desired(
                    {f"teams/t{i}/owner.txt": f"team {i}\n"}, branch="main", root=f"teams/t{i}/"
                ),
                author=AUTHOR,
                message=f"team {i}",
                git=shared,
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(gitea.log("acme", "apps")) == sorted(
        ["Initial commit", *(f"team {i}" for i in range(workers))]
    )
    assert gitea.tree("acme", "apps") == ["README.md"] + [
        f"teams/t{i}/owner.txt" for i in range(workers)
    ]


def test_read_tree_follows_gitea_pagination(gitea):
    gitea.tree_page_size = 4  # Gitea's `truncated` stays true on every page, the last one too
    git_backend = backend_for(gitea)
    files = {f"envs/dev/f{i:02}.txt": f"{i}\n" for i in range(11)}
    sync(desired(files, branch="main"), author=AUTHOR, message="many", git=git_backend)

    tree = backend_for(gitea).read_tree("acme", "apps", "main", "envs/dev/")

    assert sorted(tree.blobs) == sorted(files)
    head = tree.head
    pages = [e.body for e in gitea.exchanges if e.path.endswith(f"/git/trees/{head}")]
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    assert [len(p["tree"]) for p in pages] == [4, 4, 4, 2]  # 11 blobs, 2 trees, README
    assert all(p["truncated"] and p["total_count"] == 14 for p in pages)


def test_ensure_repo_that_appeared_meanwhile_is_success(gitea):
    backend_for(gitea).ensure_org("acme")
    backend_for(gitea).ensure_repo("acme", "apps", description="first")
    hidden = threading.Event()

    def hide_once(request):  # the GET says "missing", as if another worker created it just after
        if (
            request.method == "GET"
            and request.path.endswith("/repos/acme/apps")
            and not hidden.is_set()
        ):
            hidden.set()
            return Response('{"message": "not found"}', 404, content_type="application/json")
        return None

    gitea.before.append(hide_once)
    backend_for(gitea).ensure_repo("acme", "apps")

    assert hidden.is_set()
    assert gitea.gaps == ["POST /api/v1/orgs/acme/repos -> 409"]
    assert gitea.repos[("acme", "apps")]["description"] == "first"


def test_ensure_branch_and_webhook_are_idempotent(gitea):
    git_backend = backend_for(gitea)
    git_backend.ensure_org("acme")
    git_backend.ensure_repo("acme", "apps")
    git_backend.ensure_branch("acme", "apps", "staging", from_branch="main")
    git_backend.ensure_branch("acme", "apps", "staging", from_branch="main")
    for _ in range(2):
        git_backend.ensure_webhook(
            "acme", "apps", url="http://127.0.0.1:9/hooks/gitea", secret="s3cret"
        )

    assert [e.status for e in gitea.exchanges if e.path.endswith("/branches")] == [201]
    assert len(gitea.hooks[("acme", "apps")]) == 1
    listed = [e for e in gitea.exchanges if e.path.endswith("/hooks") and e.method == "GET"][-1]
    assert "secret" not in listed.body[0]["config"]


def test_server_down_is_a_short_git_error_without_the_token(gitea):
    git_backend = backend_for(gitea, token="very-secret-token")
    gitea.stop()

    with pytest.raises(GitError) as caught:
        sync(desired({"envs/dev/a.txt": "a\n"}), author=AUTHOR, message="m", git=git_backend)

    message = str(caught.value)
    assert message == f"Gitea at 127.0.0.1:{gitea.port} is unreachable (GET /orgs/acme)"
    assert "very-secret-token" not in message and caught.value.__cause__ is None


def test_server_error_and_timeout_are_git_errors(gitea):
    release = threading.Event()

    def failing(request):
        if request.path.endswith("/orgs/acme"):
            return Response(
                '{"message": "database is locked"}', 500, content_type="application/json"
            )
        if request.path.endswith("/version"):
            release.wait(5)  # hold the answer until the client gave up
        return None

    gitea.before.append(failing)
    with pytest.raises(GitError, match=r"failed with 500 \(GET /orgs/acme\): database is locked"):
        backend_for(gitea).ensure_org("acme")
    with pytest.raises(GitError, match=r"did not answer within 0.2s \(GET /version\)"):
        backend_for(gitea, timeout=0.2).version()
    release.set()


def test_wrong_token_is_refused_with_a_clear_error(gitea):
    with pytest.raises(GitError, match=r"refused the token \(401, GET /orgs/acme\)") as caught:
        backend_for(gitea, token="wrong-token").ensure_org("acme")
    assert "wrong-token" not in str(caught.value)
    assert "acme" not in gitea.orgs


def test_emulator_rejects_requests_outside_the_contract(gitea):
    import requests

    answer = requests.post(
        f"{gitea.url}/api/v1/orgs",
        json={"username": "acme", "visibility": "secret"},
        headers={"Authorization": f"token {gitea.token}"},
        timeout=5,
    )

    assert answer.status_code == 500 and "visibility" in answer.json()["message"]
    assert len(gitea.violations) == 1 and "acme" not in gitea.orgs
    gitea.violations.clear()  # expected here; any other violation fails the test


def test_emulator_comes_back_on_the_same_port_with_its_repos(gitea):
    git_backend = backend_for(gitea)
    sync(desired({"envs/dev/a.txt": "a\n"}), author=AUTHOR, message="m", git=git_backend)
    port = gitea.port
    gitea.stop()
    with pytest.raises(GitError, match="unreachable"):
        git_backend.version()

    gitea.start()

    assert gitea.port == port
    assert git_backend.read_file("acme", "apps", "develop", "envs/dev/a.txt") == b"a\n"


def test_repos_clone_and_push_over_smart_http(gitea, tmp_path):
    git_backend = backend_for(gitea)
    sync(desired({"envs/dev/a.txt": "a\n"}), author=AUTHOR, message="portal", git=git_backend)
    work = tmp_path / "clone"

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(work), *args], check=True, capture_output=True, text=True
        ).stdout

    subprocess.run(
        ["git", "clone", "-q", "-b", "develop", f"{gitea.url}/acme/apps.git", str(work)],
        check=True,
        capture_output=True,
    )
    assert (work / "envs/dev/a.txt").read_text() == "a\n"
    (work / "envs/dev/b.txt").write_text("from a human\n")
    run("add", "-A")
    run("-c", "user.name=Human", "-c", "user.email=h@example.test", "commit", "-qm", "human")
    run("push", "-q", "origin", "develop")

    # the portal sees the pushed file and, level-triggered, removes it again under its root
    assert git_backend.read_file("acme", "apps", "develop", "envs/dev/b.txt") == b"from a human\n"
    result = sync(
        desired({"envs/dev/a.txt": "a\n"}), author=AUTHOR, message="converge", git=git_backend
    )
    assert result.changes == {"envs/dev/b.txt": None}
    assert gitea.log("acme", "apps", "develop")[:3] == ["converge", "human", "portal"]


def test_push_webhook_is_delivered_signed_like_gitea(gitea):
    import hashlib
    import hmac

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request

    received: list[tuple[dict[str, str], bytes]] = []

    def receiver(environ, start_response):
        request = Request(environ)
        received.append((dict(request.headers), request.get_data()))
        start_response("204 No Content", [])
        return [b""]

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        git_backend = backend_for(gitea)
        git_backend.ensure_org("acme")
        git_backend.ensure_repo("acme", "apps")
        hook_url = f"http://127.0.0.1:{server.server_port}/hooks/gitea"
        git_backend.ensure_webhook("acme", "apps", url=hook_url, secret="s3cret")
        result = sync(
            desired({"envs/dev/a.txt": "a\n"}, branch="main"),
            author=AUTHOR,
            message="m",
            git=git_backend,
        )
    finally:
        server.shutdown()
        server.server_close()

    assert len(received) == 1  # delivered before the commit call returned
    headers, body = received[0]
    assert headers["X-Gitea-Event"] == "push"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Gitea-Signature"], expected)
    payload = json.loads(body)
    assert payload["ref"] == "refs/heads/main" and payload["after"] == result.head
    assert gitea.deliveries[0]["status"] == 204
