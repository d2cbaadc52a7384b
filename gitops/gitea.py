"""Gitea over its REST API (`/api/v1`, contract: ../shared/specs/gitea-openapi3.json).

Orgs, repos and branches are created through their endpoints; a commit is one call to the
multi-file contents API (`POST /repos/{owner}/{repo}/contents`) carrying a per-file blob sha for
every update and delete. Gitea has no "parent commit" precondition on that call, so compare-and-swap
is kept in two steps: the branch head is checked against `expected_head` before committing, and
Gitea refuses the commit (422 sha mismatch / file exists, 404 file gone) when a touched file
changed in between; such a refusal on a moved branch becomes `GitConflict`. A commit that lands on
a branch that moved only in files it does not touch is consistent for the paths it writes (the
level-triggered sync re-reads and converges), so it is accepted.

Every network fault (refused, timeout, 5xx, bad token) is a `GitError` with a short message that
names the server and the call, never the token.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .backend import (
    Author,
    CommitInfo,
    GitConflict,
    GitError,
    PullRequest,
    Review,
    Tree,
    blob_sha,
)

log = logging.getLogger(__name__)

TREE_PAGE_SIZE = 1000  # Gitea's default (and maximum) for git/trees
_TREE_CACHE_SIZE = 64
PULL_PAGE, MAX_PULL_PAGES = 50, 20


def _q(value: str) -> str:
    """One path segment, percent-encoded (also `/`, as Gitea's {filepath} expects)."""
    return quote(value, safe="")


class GiteaBackend:
    def __init__(self, url: str, token: str, *, timeout: float, committer: Author):
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.api = base
        self.server = urlsplit(url).netloc or url
        self.timeout = timeout
        self.committer = committer
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"token {token}",
                "Accept": "application/json",
                "User-Agent": "catalyst-portal",
            }
        )
        # Trees are immutable by commit sha: {(owner, repo, head): {path: blob sha}}.
        self._trees: OrderedDict[tuple[str, str, str], dict[str, str]] = OrderedDict()
        self._trees_lock = threading.Lock()
        self._known: set[tuple[str, ...]] = set()  # orgs and repos confirmed to exist

    # -- HTTP -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> requests.Response:
        what = f"{method} {path}"
        try:
            response = self.session.request(
                method, self.api + path, json=json, params=params, timeout=self.timeout
            )
        except requests.Timeout:
            raise GitError(
                f"Gitea at {self.server} did not answer within {self.timeout}s ({what})"
            ) from None
        except requests.ConnectionError:
            raise GitError(f"Gitea at {self.server} is unreachable ({what})") from None
        except requests.RequestException as exc:
            raise GitError(f"Gitea at {self.server}: {type(exc).__name__} ({what})") from None
        if response.status_code >= 500:
            raise GitError(
                f"Gitea at {self.server} failed with {response.status_code} ({what}): "
                f"{_message(response)}"
            )
        if response.status_code in (401, 403):
            raise GitError(
                f"Gitea at {self.server} refused the token ({response.status_code}, {what}): "
                f"{_message(response)}"
            )
        return response

    def _fail(self, response: requests.Response, doing: str) -> GitError:
        return GitError(
            f"Gitea could not {doing}: {response.status_code} {_message(response)}".rstrip(": ")
        )

    # -- orgs, repos, branches --------------------------------------------------------------

    def version(self) -> str:
        response = self._call("GET", "/version")
        if response.status_code != 200:
            raise self._fail(response, "report its version")
        return str(response.json().get("version", ""))

    def ping(self) -> None:
        self.version()

    def ensure_org(self, owner: str, *, description: str = "") -> None:
        if (owner,) in self._known:
            return
        path = f"/orgs/{_q(owner)}"
        response = self._call("GET", path)
        if response.status_code == 404:
            body = {"username": owner, "visibility": "private"}
            if description:
                body["description"] = description
            created = self._call("POST", "/orgs", json=body)
            # 422 "user already exists": another worker won the race, or the name is a user's
            if created.status_code != 201 and self._call("GET", path).status_code != 200:
                raise self._fail(created, f"create org {owner}")
        elif response.status_code != 200:
            raise self._fail(response, f"read org {owner}")
        self._known.add((owner,))

    def ensure_repo(
        self, owner: str, repo: str, *, default_branch: str = "main", description: str = ""
    ) -> None:
        if (owner, repo) in self._known:
            return
        path = f"/repos/{_q(owner)}/{_q(repo)}"
        response = self._call("GET", path)
        if response.status_code == 404:
            body = {
                "name": repo,
                "auto_init": True,
                "default_branch": default_branch,
                "readme": "Default",
                "private": True,
                "description": description,
            }
            created = self._call("POST", f"/orgs/{_q(owner)}/repos", json=body)
            # 409 (Gitea's "already exists", not listed in its spec) or 422: lost a race
            if created.status_code != 201 and self._call("GET", path).status_code != 200:
                raise self._fail(created, f"create repository {owner}/{repo}")
        elif response.status_code != 200:
            raise self._fail(response, f"read repository {owner}/{repo}")
        self._known.add((owner, repo))

    def ensure_branch(self, owner: str, repo: str, branch: str, *, from_branch: str) -> None:
        if self._head(owner, repo, branch) is not None:
            return
        created = self._call(
            "POST",
            f"/repos/{_q(owner)}/{_q(repo)}/branches",
            json={"new_branch_name": branch, "old_ref_name": from_branch},
        )
        if created.status_code in (201, 409):  # 409: it exists already
            return
        raise self._fail(created, f"create branch {branch} from {from_branch} in {owner}/{repo}")

    def ensure_webhook(
        self,
        owner: str,
        repo: str,
        *,
        url: str,
        secret: str,
        events: tuple[str, ...] = ("push",),
        branch_filter: str = "*",
    ) -> None:
        """A `gitea` webhook posting JSON to `url` (signed with `secret`) unless one exists."""
        hooks = f"/repos/{_q(owner)}/{_q(repo)}/hooks"
        listed = self._call("GET", hooks, params={"limit": 50})
        if listed.status_code != 200:
            raise self._fail(listed, f"list webhooks of {owner}/{repo}")
        if any((h.get("config") or {}).get("url") == url for h in listed.json() or []):
            return
        body = {
            "type": "gitea",
            "active": True,
            "events": list(events),
            "branch_filter": branch_filter,
            "config": {"url": url, "content_type": "json", "secret": secret},
        }
        created = self._call("POST", hooks, json=body)
        if created.status_code != 201:
            raise self._fail(created, f"create a webhook on {owner}/{repo}")

    # -- pull requests (promotions) ---------------------------------------------------------

    def open_pull(
        self, owner: str, repo: str, *, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        created = self._call(
            "POST",
            f"/repos/{_q(owner)}/{_q(repo)}/pulls",
            json={"head": head, "base": base, "title": title, "body": body},
        )
        if created.status_code != 201:
            raise self._fail(created, f"open a pull request {head} → {base} in {owner}/{repo}")
        return _pull(created.json())

    def find_pull(self, owner: str, repo: str, *, head: str, base: str) -> PullRequest | None:
        """The open pull request from branch `head` into `base`, if any (a retry of an opening
        whose answer was lost finds it instead of asking for a second one)."""
        for page in range(1, MAX_PULL_PAGES + 1):
            found = self._call(
                "GET",
                f"/repos/{_q(owner)}/{_q(repo)}/pulls",
                params={"state": "open", "base_branch": base, "page": page, "limit": PULL_PAGE},
            )
            if found.status_code != 200:
                raise self._fail(found, f"list the pull requests into {base} of {owner}/{repo}")
            pulls = found.json() or []
            for data in pulls:
                if (data.get("head") or {}).get("ref") == head:
                    return _pull(data)
            if len(pulls) < PULL_PAGE:
                return None
        raise GitError(f"{owner}/{repo} has more than {MAX_PULL_PAGES * PULL_PAGE} open pulls")

    def set_status(
        self,
        owner: str,
        repo: str,
        sha: str,
        *,
        state: str,
        context: str,
        description: str,
        target_url: str = "",
    ) -> None:
        """A commit status (`success`, `failure`, `pending`): branch protection can require it."""
        body = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        done = self._call("POST", f"/repos/{_q(owner)}/{_q(repo)}/statuses/{_q(sha)}", json=body)
        if done.status_code != 201:
            raise self._fail(done, f"set the status of {sha[:12]} in {owner}/{repo}")

    def get_pull(self, owner: str, repo: str, number: int) -> PullRequest:
        found = self._call("GET", f"/repos/{_q(owner)}/{_q(repo)}/pulls/{number}")
        if found.status_code != 200:
            raise self._fail(found, f"read pull request #{number} of {owner}/{repo}")
        return _pull(found.json())

    def pull_reviews(self, owner: str, repo: str, number: int) -> list[Review]:
        found = self._call(
            "GET", f"/repos/{_q(owner)}/{_q(repo)}/pulls/{number}/reviews", params={"limit": 50}
        )
        if found.status_code != 200:
            raise self._fail(found, f"read the reviews of #{number} in {owner}/{repo}")
        return [
            Review(
                str((r.get("user") or {}).get("login") or ""),
                str(r.get("state") or ""),
                str(r.get("commit_id") or ""),
            )
            for r in found.json() or []
            if not r.get("dismissed")
        ]

    def merge_pull(self, owner: str, repo: str, number: int, *, title: str, message: str) -> str:
        """Merge (a merge commit); returns the merge commit's sha."""
        done = self._call(
            "POST",
            f"/repos/{_q(owner)}/{_q(repo)}/pulls/{number}/merge",
            json={"do": "merge", "merge_title_field": title, "merge_message_field": message},
        )
        if done.status_code != 200:
            raise self._fail(done, f"merge pull request #{number} of {owner}/{repo}")
        return self.get_pull(owner, repo, number).merge_sha

    # -- reading ----------------------------------------------------------------------------

    def head(self, owner: str, repo: str, branch: str) -> str | None:
        response = self._call("GET", f"/repos/{_q(owner)}/{_q(repo)}/branches/{_q(branch)}")
        if response.status_code == 200:
            return str(response.json()["commit"]["id"])
        if response.status_code == 404:  # no such branch, or no such repo
            return None
        raise self._fail(response, f"read branch {branch} of {owner}/{repo}")

    def _head(self, owner: str, repo: str, branch: str) -> str | None:
        """The branch's head sha; None when the branch does not exist (GitError if the repo doesn't)."""
        response = self._call("GET", f"/repos/{_q(owner)}/{_q(repo)}/branches/{_q(branch)}")
        if response.status_code == 200:
            return str(response.json()["commit"]["id"])
        if response.status_code != 404:
            raise self._fail(response, f"read branch {branch} of {owner}/{repo}")
        if self._call("GET", f"/repos/{_q(owner)}/{_q(repo)}").status_code == 404:
            self._known.discard((owner, repo))
            raise GitError(f"repository {owner}/{repo} does not exist")
        return None

    def head_commit(self, owner: str, repo: str, branch: str) -> CommitInfo | None:
        response = self._call("GET", f"/repos/{_q(owner)}/{_q(repo)}/branches/{_q(branch)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"read branch {branch} of {owner}/{repo}")
        commit = response.json()["commit"]
        author = commit.get("author") or {}
        subject = str(commit.get("message") or "").strip().splitlines()
        return CommitInfo(
            str(commit["id"]),
            str(author.get("name") or author.get("username") or ""),
            str(author.get("email") or ""),
            subject[0] if subject else "",
        )

    def _blobs(self, owner: str, repo: str, head: str) -> dict[str, str]:
        """Every file of the commit `head` as {path: blob sha}, following Gitea's pagination."""
        key = (owner, repo, head)
        with self._trees_lock:
            if key in self._trees:
                self._trees.move_to_end(key)
                return self._trees[key]
        blobs: dict[str, str] = {}
        seen = 0
        page = 1
        while True:
            response = self._call(
                "GET",
                f"/repos/{_q(owner)}/{_q(repo)}/git/trees/{_q(head)}",
                params={"recursive": "true", "page": page, "per_page": TREE_PAGE_SIZE},
            )
            if response.status_code != 200:
                raise self._fail(response, f"read the tree of {owner}/{repo}@{head[:12]}")
            data = response.json()
            entries = data.get("tree") or []
            seen += len(entries)
            blobs.update({e["path"]: e["sha"] for e in entries if e.get("type") == "blob"})
            # Gitea sets `truncated` on every page once the tree exceeds one page, the last one
            # included, so the end is found by count.
            if not data.get("truncated") or not entries or seen >= int(data.get("total_count", 0)):
                break
            page += 1
        self._remember(owner, repo, head, blobs)
        return blobs

    def _remember(self, owner: str, repo: str, head: str, blobs: dict[str, str]) -> None:
        with self._trees_lock:
            self._trees[(owner, repo, head)] = blobs
            while len(self._trees) > _TREE_CACHE_SIZE:
                self._trees.popitem(last=False)

    def read_tree(self, owner: str, repo: str, branch: str, root: str) -> Tree:
        head, found = self.read_trees(owner, repo, branch, [root])
        return Tree(head=head, blobs=found[root])

    def read_trees(
        self, owner: str, repo: str, branch: str, roots: list[str]
    ) -> tuple[str | None, dict[str, dict[str, str]]]:
        """The files under each root, all at one head (for a group commit)."""
        head = self._head(owner, repo, branch)
        blobs = self._blobs(owner, repo, head) if head is not None else {}
        return head, {
            root: {p: s for p, s in blobs.items() if p.startswith(root)} for root in roots
        }

    def read_file(self, owner: str, repo: str, branch: str, path: str) -> bytes | None:
        response = self._call(
            "GET",
            f"/repos/{_q(owner)}/{_q(repo)}/contents/{_q(path)}",
            params={"ref": branch},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"read {path} from {owner}/{repo}@{branch}")
        data = response.json()
        if isinstance(data, list) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content") or "")

    # -- writing ----------------------------------------------------------------------------

    def commit(
        self,
        owner: str,
        repo: str,
        branch: str,
        *,
        changes: dict[str, bytes | None],
        expected_head: str | None,
        author: Author,
        message: str,
    ) -> str:
        head = self._head(owner, repo, branch)
        if head != expected_head:
            raise GitConflict(f"{branch} of {owner}/{repo} moved to {str(head)[:12]}")
        current = self._blobs(owner, repo, head) if head else {}
        files = _operations(changes, current)
        if not files:
            return head or ""
        body = {
            "branch": branch,
            "message": message,
            "author": {"name": author.name, "email": author.email},
            "committer": {"name": self.committer.name, "email": self.committer.email},
            "files": files,
        }
        response = self._call("POST", f"/repos/{_q(owner)}/{_q(repo)}/contents", json=body)
        if response.status_code == 201:
            commit = response.json()["commit"]
            parents = [p.get("sha") for p in commit.get("parents") or []]
            if head and parents and parents[0] != head:
                log.info(
                    "%s/%s@%s moved during the commit; the touched files were unchanged",
                    owner,
                    repo,
                    branch,
                )
            elif parents == ([head] if head else []):
                # the new tree is known without asking: the parent's plus these changes
                new = dict(current)
                for path, content in changes.items():
                    if content is None:
                        new.pop(path, None)
                    else:
                        new[path] = blob_sha(content)
                self._remember(owner, repo, str(commit["sha"]), new)
            return str(commit["sha"])
        if response.status_code in (404, 409, 422):
            moved = self._head(owner, repo, branch)
            if moved != head:
                raise GitConflict(
                    f"{branch} of {owner}/{repo} moved while committing: {_message(response)}"
                )
        raise self._fail(response, f"commit to {owner}/{repo}@{branch}")


def _pull(data: dict[str, Any]) -> PullRequest:
    return PullRequest(
        number=int(data["number"]),
        url=str(data.get("html_url") or ""),
        state=str(data.get("state") or ""),
        merged=bool(data.get("merged")),
        head_sha=str((data.get("head") or {}).get("sha") or ""),
        merge_sha=str(data.get("merge_commit_sha") or ""),
    )


def _operations(changes: dict[str, bytes | None], current: dict[str, str]) -> list[dict[str, str]]:
    """Gitea file operations for `changes` against the `current` {path: blob sha}."""
    files: list[dict[str, str]] = []
    for path, content in sorted(changes.items()):
        old = current.get(path)
        if content is None:
            if old is not None:
                files.append({"operation": "delete", "path": path, "sha": old})
            continue
        encoded = base64.b64encode(content).decode()
        if old is None:
            files.append({"operation": "create", "path": path, "content": encoded})
        elif old != blob_sha(content):
            files.append({"operation": "update", "path": path, "sha": old, "content": encoded})
    return files


def _message(response: requests.Response) -> str:
    """Gitea's error message (JSON `message`), else a short piece of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:500]
    return ""
