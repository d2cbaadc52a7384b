"""A small Gitea stand-in for tests: the REST endpoints the portal uses, on real bare Git repos.

It serves `/api/v1/...` over real HTTP on 127.0.0.1 from a background thread. Every request and
every response is validated with openapi-core against ../shared/specs/gitea-openapi3.json; a
violation is recorded in `violations` and answered with 500 and the reason, so the client under
test fails loudly and the `gitea` fixture asserts there were none. `stop()` takes the server down
(connections are refused) and `start()` brings it back on the same port with the same repos.
Outside `/api/`, the repos are served over git's smart HTTP (`git clone {url}/{owner}/{repo}.git`,
fetch and push; no auth) by dulwich.web.

Known gaps between Gitea and its own spec, answered like Gitea does and recorded in `gaps`:
`POST /orgs/{org}/repos` answers 409 for an existing repo, and any call with a wrong token 401;
neither status is listed in the spec, so only the body shape ({"message": str}) is checked there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests
from dulwich.errors import NotGitRepository
from dulwich.index import commit_tree
from dulwich.object_store import iter_tree_contents
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from dulwich.server import Backend
from dulwich.web import make_wsgi_chain
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "gitea-openapi3.json"
API = "/api/v1"
VERSION = "1.27.1"
KNOWN_GAPS = {("post", "/orgs/{org}/repos", 409)}
ADMIN = {"id": 1, "login": "portal-bot", "full_name": "Portal Bot", "email": "bot@gitea.test"}


class ReposUnder(Backend):
    """dulwich.web's view of the bare repos: URL path /{owner}/{repo}.git -> root/owner/repo.git."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def open_repository(self, path: str | bytes) -> Repo:
        if isinstance(path, bytes):
            path = path.decode()
        target = (self.root / path.strip("/")).resolve()
        if self.root not in target.parents or not (target / "HEAD").exists():
            raise NotGitRepository(f"no repository at {path}")
        return Repo(str(target))


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@cache
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH), config=Config(spec_validator_cls=None))


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class RawPathRequest(WerkzeugOpenAPIRequest):
    """The path as sent (werkzeug decodes %2F in {filepath} to "/", which breaks matching)."""

    @property
    def path(self) -> str:
        raw = self.request.environ.get("RAW_URI") or self.request.environ.get("REQUEST_URI")
        return raw.split("?", 1)[0] if raw else self.request.path


def _now(ts: int | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).isoformat()


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Callable[..., tuple[int, Any]]


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    body: Any = None


@dataclass
class GiteaEmulator:
    root: Path
    token: str = "emulator-token"
    host: str = "127.0.0.1"
    port: int = 0
    tree_page_size: int = 1000
    violations: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    # before(request) runs ahead of each handled call: tests use it to race or inject faults
    before: list[Callable[[Request], Response | None]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # hold_hooks: webhook deliveries wait in `held` until flush_hooks() (or are lost: drop_hooks())
    hold_hooks: bool = False
    held: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    # transport(url, body, headers) -> status: deliver in-process (a Django test client) instead
    transport: Callable[[str, bytes, dict[str, str]], int] | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.orgs: dict[str, dict[str, Any]] = {}
        self.repos: dict[tuple[str, str], dict[str, Any]] = {}
        self.hooks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.pulls: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.reviews: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self.statuses: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.routes = self._routes()
        # git clone/fetch/push over smart HTTP at /{owner}/{repo}.git (not part of the REST spec)
        self._git_http = make_wsgi_chain(ReposUnder(self.root))

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> GiteaEmulator:
        if self._server is not None:
            return self
        openapi()  # load the spec before the first request
        self._server = make_server(
            self.host, self.port, self.wsgi, threaded=True, request_handler=QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"gitea-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- WSGI -------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/api/"):
            return self._git_http(environ, start_response)
        request = Request(environ)
        response = self.handle(request)
        response.headers["Connection"] = "close"  # no keep-alive: stop() really cuts clients off
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        raw = RawPathRequest(request).path
        template = ""
        try:
            for hook in list(self.before):
                injected = hook(request)
                if injected is not None:
                    return injected
            route, args = self._match(request.method, raw)
            template = route.template
            if request.headers.get("Authorization") != f"token {self.token}":
                raise ApiError(401, "token is required")
            problems = self._validate_request(request)
            if problems:
                return self._violation(request, raw, f"request: {problems}")
            body = request.get_json(silent=True) if request.data else None
            status, payload = route.handler(*args, body=body, query=request.args)
        except ApiError as exc:
            status, payload = exc.status, {"message": exc.message, "url": f"{self.url}/api/swagger"}
        response = Response(
            json.dumps(payload) if payload is not None else b"",
            status=status,
            content_type="application/json" if payload is not None else None,
        )
        self.exchanges.append(Exchange(request.method, raw, status, payload))
        if (request.method.lower(), template, status) in KNOWN_GAPS or status == 401:
            if not (isinstance(payload, dict) and isinstance(payload.get("message"), str)):
                return self._violation(request, raw, f"gap {status}: body is not an APIError")
            self.gaps.append(f"{request.method} {raw} -> {status}")
            return response
        problems = self._validate_response(request, response)
        if problems:
            return self._violation(request, raw, f"response {status}: {problems}")
        return response

    def _violation(self, request: Request, raw: str, reason: str) -> Response:
        message = f"{request.method} {raw}: {reason}"
        self.violations.append(message)
        return Response(json.dumps({"message": message}), 500, content_type="application/json")

    def _validate_request(self, request: Request) -> str:
        errors = list(openapi().iter_request_errors(RawPathRequest(request)))
        return "; ".join(_explain(e) for e in errors)

    def _validate_response(self, request: Request, response: Response) -> str:
        errors = list(
            openapi().iter_response_errors(
                RawPathRequest(request), WerkzeugOpenAPIResponse(response)
            )
        )
        return "; ".join(_explain(e) for e in errors)

    def _match(self, method: str, raw: str) -> tuple[Route, list[str]]:
        if not raw.startswith(API + "/"):
            raise ApiError(404, "not found")
        path = raw[len(API) :]
        allowed = False
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found:
                allowed = True
                if route.method == method:
                    return route, [unquote(g) for g in found.groups()]
        raise ApiError(405 if allowed else 404, f"{method} {path} is not emulated")

    def _routes(self) -> list[Route]:
        seg = r"([^/]+)"
        table = [
            ("GET", "/version", self.get_version),
            ("POST", "/orgs", self.create_org),
            ("GET", "/orgs/{org}", self.get_org),
            ("POST", "/orgs/{org}/repos", self.create_repo),
            ("GET", "/repos/{owner}/{repo}", self.get_repo),
            ("GET", "/repos/{owner}/{repo}/branches/{branch}", self.get_branch),
            ("POST", "/repos/{owner}/{repo}/branches", self.create_branch),
            ("GET", "/repos/{owner}/{repo}/git/trees/{sha}", self.get_tree),
            ("POST", "/repos/{owner}/{repo}/contents", self.change_files),
            ("GET", "/repos/{owner}/{repo}/contents/{filepath}", self.get_contents),
            ("POST", "/repos/{owner}/{repo}/contents/{filepath}", self.create_file),
            ("PUT", "/repos/{owner}/{repo}/contents/{filepath}", self.update_file),
            ("DELETE", "/repos/{owner}/{repo}/contents/{filepath}", self.delete_file),
            ("POST", "/repos/{owner}/{repo}/pulls", self.create_pull),
            ("GET", "/repos/{owner}/{repo}/pulls", self.list_pulls),
            ("GET", "/repos/{owner}/{repo}/pulls/{index}", self.get_pull),
            ("GET", "/repos/{owner}/{repo}/pulls/{index}/reviews", self.list_reviews),
            ("POST", "/repos/{owner}/{repo}/pulls/{index}/reviews", self.create_review),
            ("POST", "/repos/{owner}/{repo}/pulls/{index}/merge", self.merge_pull),
            ("POST", "/repos/{owner}/{repo}/statuses/{sha}", self.create_status),
            ("GET", "/repos/{owner}/{repo}/hooks", self.list_hooks),
            ("POST", "/repos/{owner}/{repo}/hooks", self.create_hook),
        ]
        return [Route(m, re.compile(re.sub(r"\{[a-z]+\}", seg, t)), t, h) for m, t, h in table]

    # -- git helpers ------------------------------------------------------------------------

    def repo_path(self, owner: str, repo: str) -> Path:
        return self.root / owner / f"{repo}.git"

    def _repo(self, owner: str, repo: str) -> Repo:
        if (owner, repo) not in self.repos:
            raise ApiError(404, "The target couldn't be found.")
        return Repo(str(self.repo_path(owner, repo)))

    def _branch_head(self, r: Repo, branch: str) -> bytes | None:
        return r.refs.as_dict().get(f"refs/heads/{branch}".encode())

    def _files(self, r: Repo, head: bytes | None) -> dict[str, tuple[bytes, int]]:
        if head is None:
            return {}
        return {
            e.path.decode(): (e.sha, e.mode)
            for e in iter_tree_contents(r.object_store, r[head].tree)
        }

    def _write(
        self,
        owner: str,
        repo: str,
        branch: str,
        ops: list[dict[str, Any]],
        *,
        author: dict[str, str] | None,
        committer: dict[str, str] | None,
        message: str,
        new_branch: str = "",
        pusher: dict[str, Any] | None = None,
    ) -> tuple[Commit, list[str]]:
        """Apply Gitea file operations in one commit; errors as Gitea answers them."""
        with self._lock, self._repo(owner, repo) as r:
            head = self._branch_head(r, branch)
            if head is None and r.refs.as_dict():
                raise ApiError(404, f"branch does not exist [name: {branch}]")
            target = new_branch or branch
            if new_branch and self._branch_head(r, new_branch) is not None:
                raise ApiError(422, f"branch already exists [name: {new_branch}]")
            files = self._files(r, head)
            touched: list[str] = []
            for op in ops:
                path, kind = op["path"].strip("/"), op["operation"]
                if not path or ".." in path.split("/") or path.startswith(".git/"):
                    raise ApiError(422, f"path contains a malformed path component [path: {path}]")
                old = files.get(path)
                given = op.get("sha") or ""
                if kind == "create" and old is not None:
                    raise ApiError(422, f"repository file already exists [path: {path}]")
                if kind in ("update", "delete"):
                    if not given:
                        raise ApiError(422, "a SHA or commit ID must be provided")
                    if old is None:
                        raise ApiError(404, f"repository file does not exist [path: {path}]")
                mismatch = given and old is not None and given != old[0].decode()
                if kind in ("update", "delete", "upload") and mismatch:
                    raise ApiError(
                        422, f"sha does not match [given: {given}, expected: {old[0].decode()}]"
                    )
                if kind == "rename":
                    raise ApiError(422, "the emulator does not support rename")
                if kind == "delete":
                    files.pop(path)
                else:
                    try:
                        content = base64.b64decode(op.get("content") or "", validate=True)
                    except ValueError:
                        raise ApiError(422, f"invalid base64 content [path: {path}]") from None
                    blob = Blob.from_string(content)
                    r.object_store.add_object(blob)
                    files[path] = (blob.id, old[1] if old else 0o100644)
                touched.append(path)
            who = author or committer or ADMIN
            by = committer or author or ADMIN
            c = self._commit_object(r, head, files, who, by, message or "Update files")
            ref = f"refs/heads/{target}".encode()
            if new_branch or head is None:
                moved = r.refs.add_if_new(ref, c.id)
            else:
                moved = r.refs.set_if_equals(ref, head, c.id)
            if not moved:
                raise ApiError(409, f"branch {target} moved")
            if head is None:
                r.refs.set_symbolic_ref(b"HEAD", ref)
            self.repos[(owner, repo)]["empty"] = False
        self._notify(owner, repo, target, c, touched, head, pusher)
        return c, touched

    def _commit_object(
        self,
        r: Repo,
        parent: bytes | None,
        files: dict[str, tuple[bytes, int]],
        author: dict[str, str],
        committer: dict[str, str],
        message: str,
    ) -> Commit:
        c = Commit()
        c.tree = commit_tree(r.object_store, [(p.encode(), s, m) for p, (s, m) in files.items()])
        c.parents = [parent] if parent else []
        c.author = f"{author.get('name') or ADMIN['login']} <{author.get('email') or ADMIN['email']}>".encode()
        c.committer = f"{committer.get('name') or ADMIN['login']} <{committer.get('email') or ADMIN['email']}>".encode()
        c.commit_time = c.author_time = int(time.time())
        c.commit_timezone = c.author_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        r.object_store.add_object(c)
        return c

    # -- JSON shapes ------------------------------------------------------------------------

    def _org_json(self, name: str) -> dict[str, Any]:
        org = self.orgs[name]
        return {
            "id": org["id"],
            "name": name,
            "username": name,
            "full_name": org["full_name"],
            "description": org["description"],
            "visibility": org["visibility"],
            "avatar_url": f"{self.url}/avatars/{name}",
            "website": "",
            "location": "",
            "email": "",
            "repo_admin_change_team_access": False,
        }

    def _repo_json(self, owner: str, name: str) -> dict[str, Any]:
        meta = self.repos[(owner, name)]
        return {
            "id": meta["id"],
            "name": name,
            "full_name": f"{owner}/{name}",
            "owner": {
                "id": self.orgs[owner]["id"],
                "login": owner,
                "full_name": self.orgs[owner]["full_name"],
            },
            "description": meta["description"],
            "private": meta["private"],
            "empty": meta["empty"],
            "archived": False,
            "fork": False,
            "mirror": False,
            "template": False,
            "default_branch": meta["default_branch"],
            "object_format_name": "sha1",
            "html_url": f"{self.url}/{owner}/{name}",
            "clone_url": f"{self.url}/{owner}/{name}.git",
            "url": f"{self.url}{API}/repos/{owner}/{name}",
            "created_at": meta["created_at"],
            "updated_at": meta["created_at"],
        }

    def _commit_json(self, owner: str, repo: str, c: Commit) -> dict[str, Any]:
        def person(raw: bytes, ts: int) -> dict[str, str]:
            name, _, email = raw.decode().rpartition(" <")
            return {"name": name, "email": email.rstrip(">"), "date": _now(ts)}

        base = f"{self.url}{API}/repos/{owner}/{repo}/git"
        return {
            "sha": c.id.decode(),
            "url": f"{base}/commits/{c.id.decode()}",
            "html_url": f"{self.url}/{owner}/{repo}/commit/{c.id.decode()}",
            "created": _now(c.commit_time),
            "message": c.message.decode(),
            "author": person(c.author, c.author_time),
            "committer": person(c.committer, c.commit_time),
            "parents": [
                {"sha": p.decode(), "url": f"{base}/commits/{p.decode()}"} for p in c.parents
            ],
            "tree": {"sha": c.tree.decode(), "url": f"{base}/trees/{c.tree.decode()}"},
        }

    def _branch_json(self, owner: str, repo: str, name: str, c: Commit) -> dict[str, Any]:
        def user(raw: bytes) -> dict[str, str]:
            who, _, email = raw.decode().rpartition(" <")
            return {"name": who, "email": email.rstrip(">"), "username": ""}

        return {
            "name": name,
            "commit": {
                "id": c.id.decode(),
                "message": c.message.decode(),
                "url": f"{self.url}/{owner}/{repo}/commit/{c.id.decode()}",
                "author": user(c.author),
                "committer": user(c.committer),
                "timestamp": _now(c.commit_time),
                "added": [],
                "removed": [],
                "modified": [],
            },
            "protected": False,
            "required_approvals": 0,
            "enable_status_check": False,
            "status_check_contexts": [],
            "user_can_push": True,
            "user_can_merge": True,
            "effective_branch_protection_name": "",
        }

    def _content_json(
        self, owner: str, repo: str, r: Repo, path: str, sha: bytes, head: bytes
    ) -> dict[str, Any]:
        data = r[sha].data
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha.decode(),
            "last_commit_sha": head.decode(),
            "type": "file",
            "size": len(data),
            "encoding": "base64",
            "content": base64.b64encode(data).decode(),
            "url": f"{self.url}{API}/repos/{owner}/{repo}/contents/{path}",
            "git_url": f"{self.url}{API}/repos/{owner}/{repo}/git/blobs/{sha.decode()}",
            "html_url": f"{self.url}/{owner}/{repo}/src/commit/{head.decode()}/{path}",
            "download_url": f"{self.url}/{owner}/{repo}/raw/commit/{head.decode()}/{path}",
            "_links": {
                "self": f"{self.url}{API}/repos/{owner}/{repo}/contents/{path}",
                "git": f"{self.url}{API}/repos/{owner}/{repo}/git/blobs/{sha.decode()}",
                "html": f"{self.url}/{owner}/{repo}/src/commit/{head.decode()}/{path}",
            },
        }

    # -- endpoints --------------------------------------------------------------------------

    def get_version(self, *, body: Any, query: Any) -> tuple[int, Any]:
        return 200, {"version": VERSION}

    def create_org(self, *, body: Any, query: Any) -> tuple[int, Any]:
        name = body["username"]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}", name):
            raise ApiError(422, f"invalid username [name: {name}]")
        with self._lock:
            if name in self.orgs:
                raise ApiError(422, f"user already exists [name: {name}]")
            self.orgs[name] = {
                "id": next(self._ids),
                "full_name": body.get("full_name", ""),
                "description": body.get("description", ""),
                "visibility": body.get("visibility", "public"),
            }
        return 201, self._org_json(name)

    def get_org(self, org: str, *, body: Any, query: Any) -> tuple[int, Any]:
        if org not in self.orgs:
            raise ApiError(404, "The target couldn't be found.")
        return 200, self._org_json(org)

    def create_repo(self, org: str, *, body: Any, query: Any) -> tuple[int, Any]:
        name = body["name"]
        if org not in self.orgs:
            raise ApiError(404, "The target couldn't be found.")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) or name.endswith(".git"):
            raise ApiError(400, f"invalid repository name [name: {name}]")
        with self._lock:
            if (org, name) in self.repos:
                raise ApiError(409, "The repository with the same name already exists.")
            branch = body.get("default_branch") or "main"
            path = self.repo_path(org, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            r = Repo.init_bare(str(path), mkdir=True)
            r.refs.set_symbolic_ref(b"HEAD", f"refs/heads/{branch}".encode())
            self.repos[(org, name)] = {
                "id": next(self._ids),
                "description": body.get("description", ""),
                "private": bool(body.get("private", False)),
                "default_branch": branch,
                "empty": True,
                "created_at": _now(),
            }
            if body.get("auto_init"):
                readme = f"# {name}\n\n{body.get('description', '')}\n".encode()
                blob = Blob.from_string(readme)
                r.object_store.add_object(blob)
                c = self._commit_object(
                    r, None, {"README.md": (blob.id, 0o100644)}, ADMIN, ADMIN, "Initial commit"
                )
                r.refs.add_if_new(f"refs/heads/{branch}".encode(), c.id)
                self.repos[(org, name)]["empty"] = False
            r.close()
        return 201, self._repo_json(org, name)

    def get_repo(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        if (owner, repo) not in self.repos:
            raise ApiError(404, "The target couldn't be found.")
        return 200, self._repo_json(owner, repo)

    def get_branch(
        self, owner: str, repo: str, branch: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        with self._repo(owner, repo) as r:
            head = self._branch_head(r, branch)
            if head is None:
                raise ApiError(404, f"branch does not exist [name: {branch}]")
            return 200, self._branch_json(owner, repo, branch, r[head])

    def create_branch(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        new = body["new_branch_name"]
        old = body.get("old_ref_name") or body.get("old_branch_name")
        with self._lock, self._repo(owner, repo) as r:
            if old is None:
                old = self.repos[(owner, repo)]["default_branch"]
            base = self._branch_head(r, old.removeprefix("refs/heads/"))
            if base is None and re.fullmatch(r"[0-9a-f]{40}", old) and old.encode() in r:
                base = old.encode()
            if base is None:
                raise ApiError(404, f"The old branch does not exist [name: {old}]")
            if not r.refs.add_if_new(f"refs/heads/{new}".encode(), base):
                raise ApiError(409, f"The branch with the same name already exists [name: {new}]")
            return 201, self._branch_json(owner, repo, new, r[base])

    def get_tree(
        self, owner: str, repo: str, sha: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        with self._repo(owner, repo) as r:
            obj_id = self._branch_head(r, sha) or sha.encode()
            try:
                obj = r[obj_id]
            except (KeyError, ValueError):
                raise ApiError(404, f"object does not exist [id: {sha}]") from None
            tree = r[obj.tree] if isinstance(obj, Commit) else obj
            if not isinstance(tree, Tree):
                raise ApiError(400, f"sha not valid [{sha}]")
            recursive = query.get("recursive", "").lower() in ("1", "true")
            entries = list(self._entries(r, tree, "", recursive))
        per_page = int(query.get("per_page") or self.tree_page_size)
        per_page = min(per_page, self.tree_page_size) if per_page > 0 else self.tree_page_size
        page = max(int(query.get("page") or 1), 1)
        start = per_page * (page - 1)
        base = f"{self.url}{API}/repos/{owner}/{repo}/git"
        answer: dict[str, Any] = {
            "sha": tree.id.decode(),
            "url": f"{base}/trees/{tree.id.decode()}",
            "page": page,
            "total_count": len(entries),
            "truncated": False,
            "tree": [],
        }
        if start >= len(entries):
            return 200, answer
        answer["truncated"] = len(entries) > per_page  # Gitea sets it on every page, last included
        answer["tree"] = [
            {**e, "url": f"{base}/{'blobs' if e['type'] == 'blob' else 'trees'}/{e['sha']}"}
            for e in entries[start : start + per_page]
        ]
        return 200, answer

    def _entries(self, r: Repo, tree: Tree, prefix: str, recursive: bool) -> Any:
        for item in tree.iteritems():
            path = prefix + item.path.decode()
            if item.mode == 0o040000:
                yield {"path": path, "mode": "040000", "type": "tree", "sha": item.sha.decode()}
                if recursive:
                    yield from self._entries(r, r[item.sha], path + "/", recursive)
            elif item.mode == 0o160000:
                yield {"path": path, "mode": "160000", "type": "commit", "sha": item.sha.decode()}
            else:
                yield {
                    "path": path,
                    "mode": f"{item.mode:06o}",
                    "type": "blob",
                    "size": len(r[item.sha].data),
                    "sha": item.sha.decode(),
                }

    def get_contents(
        self, owner: str, repo: str, filepath: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        with self._repo(owner, repo) as r:
            ref = query.get("ref") or self.repos[(owner, repo)]["default_branch"]
            head = self._branch_head(r, ref) or (ref.encode() if ref.encode() in r else None)
            if head is None:
                raise ApiError(404, f"no such ref [{ref}]")
            found = self._files(r, head).get(filepath.strip("/"))
            if found is None:
                raise ApiError(404, "The target couldn't be found.")
            return 200, self._content_json(owner, repo, r, filepath.strip("/"), found[0], head)

    def _single(
        self, owner: str, repo: str, filepath: str, body: dict[str, Any], operation: str
    ) -> tuple[Commit, Repo]:
        branch = body.get("branch") or self.repos.get((owner, repo), {}).get("default_branch", "")
        op = {"operation": operation, "path": filepath}
        if "content" in body:
            op["content"] = body["content"]
        if body.get("sha"):
            op["sha"] = body["sha"]
        c, _ = self._write(
            owner,
            repo,
            branch,
            [op],
            author=body.get("author"),
            committer=body.get("committer"),
            message=body.get("message") or f"{operation} {filepath}",
            new_branch=body.get("new_branch") or "",
        )
        return c, self._repo(owner, repo)

    def _file_response(
        self, owner: str, repo: str, filepath: str, c: Commit, r: Repo
    ) -> dict[str, Any]:
        with r:
            found = self._files(r, c.id).get(filepath.strip("/"))
            content = (
                self._content_json(owner, repo, r, filepath.strip("/"), found[0], c.id)
                if found
                else None
            )
        answer = {"commit": self._commit_json(owner, repo, c), "verification": _unsigned()}
        if content is not None:
            answer["content"] = content
        return answer

    def create_file(
        self, owner: str, repo: str, filepath: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        c, r = self._single(owner, repo, filepath, body, "create")
        return 201, self._file_response(owner, repo, filepath, c, r)

    def update_file(
        self, owner: str, repo: str, filepath: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        c, r = self._single(owner, repo, filepath, body, "update" if body.get("sha") else "create")
        return (200 if body.get("sha") else 201), self._file_response(owner, repo, filepath, c, r)

    def delete_file(
        self, owner: str, repo: str, filepath: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        c, r = self._single(owner, repo, filepath, body, "delete")
        r.close()
        return 200, {"commit": self._commit_json(owner, repo, c), "verification": _unsigned()}

    def change_files(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        branch = body.get("branch") or self.repos.get((owner, repo), {}).get("default_branch", "")
        c, touched = self._write(
            owner,
            repo,
            branch,
            body["files"],
            author=body.get("author"),
            committer=body.get("committer"),
            message=body.get("message") or "Update files",
            new_branch=body.get("new_branch") or "",
        )
        with self._repo(owner, repo) as r:
            files = self._files(r, c.id)
            contents = [
                self._content_json(owner, repo, r, p, files[p][0], c.id)
                for p in touched
                if p in files
            ]
        return 201, {
            "commit": self._commit_json(owner, repo, c),
            "files": contents,
            "verification": _unsigned(),
        }

    def create_pull(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        with self._repo(owner, repo) as r:
            head_sha = self._branch_head(r, body.get("head", ""))
            base_sha = self._branch_head(r, body.get("base", ""))
        if head_sha is None or base_sha is None:
            raise ApiError(404, "head or base branch does not exist")
        with self._lock:
            pulls = self.pulls.setdefault((owner, repo), [])
            if any(
                p["head"]["ref"] == body["head"] and p["base"]["ref"] == body["base"] for p in pulls
            ):
                raise ApiError(409, "pull request already exists for these targets")
            number = len(pulls) + 1
            created = _now()
            pull = {
                "id": next(self._ids),
                "number": number,
                "title": body.get("title", ""),
                "body": body.get("body", ""),
                "state": "open",
                "draft": False,
                "merged": False,
                "mergeable": True,
                "head": {"ref": body["head"], "sha": head_sha.decode(), "label": body["head"]},
                "base": {"ref": body["base"], "sha": base_sha.decode(), "label": body["base"]},
                "html_url": f"{self.url}/{owner}/{repo}/pulls/{number}",
                "url": f"{self.url}/{owner}/{repo}/pulls/{number}",
                "created_at": created,
                "updated_at": created,
            }
            pulls.append(pull)
        self._notify_pull(owner, repo, "opened", pull, self._opener)
        return 201, pull

    def list_pulls(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        """`state` (open, closed, all) and `base_branch` filters; `page`/`limit` pagination."""
        if (owner, repo) not in self.repos:
            raise ApiError(404, "The target couldn't be found.")
        state, base = query.get("state", "open"), query.get("base_branch")
        found = [
            p
            for p in self.pulls.get((owner, repo), [])
            if (state == "all" or p["state"] == state) and (not base or p["base"]["ref"] == base)
        ]
        page, limit = int(query.get("page", 1)), int(query.get("limit", 30))
        return 200, found[(page - 1) * limit : page * limit]

    _opener: dict[str, Any] | None = None

    def open_pull_as(
        self, owner: str, repo: str, user: dict[str, Any], *, head: str, base: str, title: str
    ) -> dict[str, Any]:
        """A person opens a pull request in Gitea's own UI."""
        self._opener = user
        try:
            _status, pull = self.create_pull(
                owner, repo, body={"head": head, "base": base, "title": title}, query={}
            )
        finally:
            self._opener = None
        return pull

    def _notify_pull(
        self, owner: str, repo: str, action: str, pull: dict[str, Any], user: Any
    ) -> None:
        """A `pull_request` event (PullRequestPayload), signed like a push."""
        sender = {**ADMIN, **(user or {})}
        for hook in self.hooks.get((owner, repo), []):
            if not hook["active"] or "pull_request" not in hook["events"]:
                continue
            payload = json.dumps(
                {
                    "action": action,
                    "number": pull["number"],
                    "pull_request": {**pull, "user": sender},
                    "repository": {
                        "id": self.repos[(owner, repo)]["id"],
                        "full_name": f"{owner}/{repo}",
                        "name": repo,
                    },
                    "sender": sender,
                }
            ).encode()
            secret = hook["config"].get("secret", "").encode()
            headers = {
                "Content-Type": "application/json",
                "X-Gitea-Event": "pull_request",
                "X-Gitea-Delivery": str(next(self._ids)),
                "X-Gitea-Signature": hmac.new(secret, payload, hashlib.sha256).hexdigest(),
            }
            if self.hold_hooks:
                self.held.append((hook["config"]["url"], payload, headers))
            else:
                self._deliver(hook["config"]["url"], payload, headers)

    def create_status(
        self, owner: str, repo: str, sha: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        with self._repo(owner, repo) as r:
            if sha.encode() not in r:
                raise ApiError(404, f"commit does not exist [sha: {sha}]")
        now = _now()
        status = {
            "id": next(self._ids),
            "status": body.get("state") or "pending",
            "context": body.get("context") or "default",
            "description": body.get("description") or "",
            "target_url": body.get("target_url") or "",
            "url": f"{self.url}{API}/repos/{owner}/{repo}/statuses/{sha}",
            "creator": {"id": ADMIN["id"], "login": ADMIN["login"]},
            "created_at": now,
            "updated_at": now,
        }
        self.statuses.setdefault((owner, repo, sha), []).append(status)
        return 201, status

    def _pull(self, owner: str, repo: str, index: str) -> dict[str, Any]:
        for pull in self.pulls.get((owner, repo), []):
            if str(pull["number"]) == index:
                return pull
        raise ApiError(404, "The target couldn't be found.")

    def get_pull(
        self, owner: str, repo: str, index: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        pull = self._pull(owner, repo, index)
        if pull["state"] == "open":  # the head follows its branch until merged
            with self._repo(owner, repo) as r:
                head = self._branch_head(r, pull["head"]["ref"])
            if head is not None:
                pull["head"]["sha"] = head.decode()
        return 200, pull

    def list_reviews(
        self, owner: str, repo: str, index: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        pull = self._pull(owner, repo, index)
        return 200, list(self.reviews.get((owner, repo, pull["number"]), []))

    def create_review(
        self, owner: str, repo: str, index: str, *, body: Any, query: Any, user: Any = None
    ) -> tuple[int, Any]:
        """A review by the token's user (tests: `review_as` for a person reviewing in Gitea)."""
        pull = self._pull(owner, repo, index)
        who = {**ADMIN, **(user or {})}
        state = {"APPROVED": "APPROVED", "REQUEST_CHANGES": "REQUEST_CHANGES"}.get(
            str(body.get("event") or "").upper(), "COMMENT"
        )
        now = _now()
        review = {
            "id": next(self._ids),
            "body": body.get("body", ""),
            "commit_id": body.get("commit_id") or pull["head"]["sha"],
            "state": state,
            "user": {"id": who["id"], "login": who["login"], "full_name": who["full_name"]},
            "official": True,
            "stale": False,
            "dismissed": False,
            "comments_count": 0,
            "submitted_at": now,
            "updated_at": now,
            "html_url": pull["html_url"],
            "pull_request_url": pull["url"],
        }
        self.reviews.setdefault((owner, repo, pull["number"]), []).append(review)
        return 200, review

    def review_as(
        self, owner: str, repo: str, number: int, user: dict[str, Any], event: str
    ) -> None:
        """A person reviews in Gitea's own UI (not through the portal's token)."""
        self.create_review(owner, repo, str(number), body={"event": event}, query={}, user=user)

    def merge_pull(
        self, owner: str, repo: str, index: str, *, body: Any, query: Any
    ) -> tuple[int, Any]:
        """`do: merge`: the head's changes since the merge base applied on the base branch in a
        merge commit (two parents); refused when a file changed on both sides."""
        pull = self._pull(owner, repo, index)
        if pull["merged"] or pull["state"] != "open":
            raise ApiError(405, "The pull request is closed or merged already.")
        if body.get("do") not in ("merge", "squash"):
            raise ApiError(405, f"merge style {body.get('do')} is not emulated")
        with self._lock, self._repo(owner, repo) as r:
            base_ref, head_ref = pull["base"]["ref"], pull["head"]["ref"]
            base, head = self._branch_head(r, base_ref), self._branch_head(r, head_ref)
            if base is None or head is None:
                raise ApiError(404, "head or base branch does not exist")
            ancestors = {e.commit.id for e in r.get_walker(include=[base])}
            merge_base = next(
                (e.commit.id for e in r.get_walker(include=[head]) if e.commit.id in ancestors),
                None,
            )
            before, ours, theirs = (
                self._files(r, merge_base),
                self._files(r, base),
                self._files(r, head),
            )
            changed = {p for p in set(before) | set(theirs) if before.get(p) != theirs.get(p)}
            clash = [
                p for p in changed if ours.get(p) != before.get(p) and ours.get(p) != theirs.get(p)
            ]
            if clash:
                raise ApiError(409, f"merge conflict in {', '.join(sorted(clash))}")
            files = dict(ours)
            for path in changed:
                if path in theirs:
                    files[path] = theirs[path]
                else:
                    files.pop(path, None)
            message = (
                body.get("merge_message_field") or f"Merge pull request #{index} from {head_ref}"
            )
            title = body.get("merge_title_field")
            if title:
                message = f"{title}\n\n{message}"
            c = self._commit_object(r, base, files, ADMIN, ADMIN, message)
            c.parents = [base, head] if body.get("do") == "merge" else [base]
            r.object_store.add_object(c)
            if not r.refs.set_if_equals(f"refs/heads/{base_ref}".encode(), base, c.id):
                raise ApiError(409, f"branch {base_ref} moved")
            now = _now()
            pull.update(
                state="closed",
                merged=True,
                merged_at=now,
                closed_at=now,
                merge_commit_sha=c.id.decode(),
                updated_at=now,
            )
        self._notify(owner, repo, base_ref, c, sorted(changed), base)
        return 200, None

    def list_hooks(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        if (owner, repo) not in self.repos:
            raise ApiError(404, "The target couldn't be found.")
        return 200, [_public_hook(h) for h in self.hooks.get((owner, repo), [])]

    def create_hook(self, owner: str, repo: str, *, body: Any, query: Any) -> tuple[int, Any]:
        if (owner, repo) not in self.repos:
            raise ApiError(404, "The target couldn't be found.")
        config = body.get("config") or {}
        if not config.get("url") or not config.get("content_type"):
            raise ApiError(422, "config.url and config.content_type are required")
        created = _now()
        hook = {
            "id": next(self._ids),
            "type": body["type"],
            "active": bool(body.get("active", False)),
            "events": body.get("events") or ["push"],
            "branch_filter": body.get("branch_filter", ""),
            "config": dict(config),
            "created_at": created,
            "updated_at": created,
        }
        self.hooks.setdefault((owner, repo), []).append(hook)
        return 201, _public_hook(hook)

    # -- webhooks and test helpers ----------------------------------------------------------

    def _notify(
        self,
        owner: str,
        repo: str,
        branch: str,
        c: Commit,
        touched: list[str],
        before: bytes | None = None,
        pusher: dict[str, Any] | None = None,
    ) -> None:
        """Deliver a `push` event to active hooks, shaped like Gitea's PushPayload and signed like
        Gitea (X-Gitea-Signature: HMAC-SHA256 of the body with the hook secret, hex)."""
        user = {**ADMIN, **(pusher or {})}
        user.setdefault("username", user["login"])
        name, _, email = c.author.decode().rpartition(" <")
        commit = {
            "id": c.id.decode(),
            "message": c.message.decode(),
            "url": f"{self.url}/{owner}/{repo}/commit/{c.id.decode()}",
            "author": {"name": name, "email": email.rstrip(">"), "username": ""},
            "committer": {"name": name, "email": email.rstrip(">"), "username": ""},
            "timestamp": _now(c.commit_time),
            "added": touched,
            "removed": [],
            "modified": [],
        }
        old = (before or (c.parents[0] if c.parents else b"0" * 40)).decode()
        for hook in self.hooks.get((owner, repo), []):
            if not hook["active"] or "push" not in hook["events"]:
                continue
            payload = json.dumps(
                {
                    "ref": f"refs/heads/{branch}",
                    "before": old,
                    "after": c.id.decode(),
                    "compare_url": f"{self.url}/{owner}/{repo}/compare/{old}...{c.id.decode()}",
                    "commits": [commit],
                    "total_commits": 1,
                    "head_commit": commit,
                    "repository": {
                        "id": self.repos[(owner, repo)]["id"],
                        "full_name": f"{owner}/{repo}",
                        "name": repo,
                    },
                    "pusher": user,
                    "sender": user,
                }
            ).encode()
            secret = hook["config"].get("secret", "").encode()
            headers = {
                "Content-Type": "application/json",
                "X-Gitea-Event": "push",
                "X-Gitea-Delivery": str(next(self._ids)),
                "X-Gitea-Signature": hmac.new(secret, payload, hashlib.sha256).hexdigest(),
            }
            if self.hold_hooks:
                self.held.append((hook["config"]["url"], payload, headers))
            else:
                self._deliver(hook["config"]["url"], payload, headers)

    def _deliver(self, url: str, payload: bytes, headers: dict[str, str]) -> None:
        record: dict[str, Any] = {"url": url, "headers": headers}
        try:
            if self.transport is not None:
                record["status"] = self.transport(url, payload, headers)
            else:
                record["status"] = requests.post(
                    url, data=payload, headers=headers, timeout=5
                ).status_code
        except requests.RequestException as exc:
            record["error"] = str(exc)
        self.deliveries.append(record)

    def flush_hooks(self) -> int:
        """Deliver the held webhook calls, oldest first; returns how many."""
        held, self.held = self.held, []
        for url, payload, headers in held:
            self._deliver(url, payload, headers)
        return len(held)

    def drop_hooks(self) -> int:
        """Lose the held webhook calls (Gitea's delivery failed for good)."""
        lost, self.held = len(self.held), []
        return lost

    def commit_directly(
        self,
        owner: str,
        repo: str,
        branch: str,
        changes: dict[str, bytes | None],
        message: str = "outside change",
        as_user: dict[str, str] | None = None,
    ) -> str:
        """Commit and push as a person would (`as_user`: login, full_name, email), bypassing the
        API; the push webhook names them as the pusher."""
        with self._repo(owner, repo) as r:
            files = self._files(r, self._branch_head(r, branch))
        ops = [
            {"operation": "delete", "path": p, "sha": files[p][0].decode()}
            if content is None
            else {
                "operation": "upload",
                "path": p,
                "content": base64.b64encode(content).decode(),
            }
            for p, content in changes.items()
        ]
        who = None
        if as_user:
            who = {"name": as_user.get("full_name") or as_user["login"], "email": as_user["email"]}
        c, _ = self._write(
            owner, repo, branch, ops, author=who, committer=who, message=message, pusher=as_user
        )
        return c.id.decode()

    def log(self, owner: str, repo: str, branch: str = "main") -> list[str]:
        """Commit subjects on `branch`, newest first."""
        if (owner, repo) not in self.repos:
            return []
        with self._repo(owner, repo) as r:
            head = self._branch_head(r, branch)
            if head is None:
                return []
            return [e.commit.message.decode().splitlines()[0] for e in r.get_walker(include=[head])]

    def read(self, owner: str, repo: str, path: str, branch: str = "main") -> bytes | None:
        with self._repo(owner, repo) as r:
            found = self._files(r, self._branch_head(r, branch)).get(path)
            return r[found[0]].data if found else None

    def tree(self, owner: str, repo: str, branch: str = "main") -> list[str]:
        with self._repo(owner, repo) as r:
            return sorted(self._files(r, self._branch_head(r, branch)))


def _unsigned() -> dict[str, Any]:
    return {
        "verified": False,
        "reason": "gpg.error.not_signed_commit",
        "signature": "",
        "payload": "",
    }


def _public_hook(hook: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in hook["config"].items() if k != "secret"}  # Gitea never echoes it
    return {**hook, "config": config}


def _explain(error: Exception) -> str:
    detail = [str(error)]
    cause = error.__cause__
    for sub in getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None) or []:
        where = ".".join(str(p) for p in sub.absolute_path) or "<root>"
        detail.append(f"{where}: {sub.message}")
    if cause is not None and not getattr(cause, "schema_errors", None):
        detail.append(str(cause))
    return " | ".join(detail)
