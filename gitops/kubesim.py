"""A loopback emulator of the Kubernetes apiserver REST protocol for custom resources, accepted by
the official `kubernetes` client (protocol: ../shared/specs/README.md), plus a tiny "Flux" that
moves objects through the condition sequences the real controllers produce.

It stands in for a cluster where none can run: the test suite and the benchmarks drive it, and
`SIMULATED_CLUSTER=true` runs it inside the portal as a demo (gitops/simulated.py). It is never a
real cluster: nothing it "applies" runs anywhere.

Protocol: list with labelSelector; chunked watch (`watch=true&resourceVersion=N
&allowWatchBookmarks=true&timeoutSeconds=S`) streaming newline-delimited events; an expired
resourceVersion answers an ERROR event with a 410 Status; one global increasing resourceVersion;
metadata.generation bumps on spec changes; get / create / replace (409 on a stale
resourceVersion) / merge-patch / delete; the /status subresource; errors as `kind: Status`.
Every object written is validated against the Flux CRD schema of its kind.

Core/v1 Events (`/api/v1/[namespaces/{ns}/]events`) are served too, with `fieldSelector` on
dotted fields (`involvedObject.kind=HelmRelease`), so the watcher can read what Flux records;
the Flux driver records them as helm-, kustomize- and source-controller do.

Faults for tests: `cut_next_event()` (the stream dies in the middle of an event), `down()` /
`up()` (the apiserver goes away and comes back on the same port), `expire()` (410 for every
resourceVersion seen so far), `drop_watches()`.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from jsonschema import Draft7Validator


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    validator: Draft7Validator

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def load_resources(crd_dir: Path) -> dict[tuple[str, str, str], Resource]:
    found = {
        ("", "v1", "events"): Resource("", "v1", "events", "Event", Draft7Validator(EVENT_SCHEMA))
    }
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                found[(spec["group"], version["name"], spec["names"]["plural"])] = Resource(
                    spec["group"],
                    version["name"],
                    spec["names"]["plural"],
                    spec["names"]["kind"],
                    Draft7Validator(schema),
                )
    return found


# The fields of a core/v1 Event the portal reads (from the Kubernetes API reference).
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["metadata", "involvedObject", "reason", "message", "type"],
    "properties": {
        "metadata": {"type": "object", "required": ["name"]},
        "involvedObject": {
            "type": "object",
            "required": ["kind", "name"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "uid": {"type": "string"},
            },
        },
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "type": {"enum": ["Normal", "Warning"]},
        "count": {"type": "integer", "minimum": 1},
        "firstTimestamp": {"type": "string"},
        "lastTimestamp": {"type": "string"},
        "source": {"type": "object", "properties": {"component": {"type": "string"}}},
        "reportingComponent": {"type": "string"},
    },
}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated (AND)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = re.split("==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def match_fields(selector: str, obj: dict[str, Any]) -> bool:
    """Field selectors on dotted paths: `involvedObject.kind=HelmRelease,type!=Normal`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = re.split("!=|==?", term, maxsplit=1)
        node: Any = obj
        for part in key.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if (str(node if node is not None else "") == value.strip()) == negate:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


class Store:
    """The emulated etcd: objects, one global resourceVersion, a bounded event history."""

    def __init__(self, resources: dict[tuple[str, str, str], Resource]) -> None:
        self.resources = resources
        self.by_kind = {r.kind: r for r in resources.values()}
        self.cond = threading.Condition()
        self.rv = 100
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []
        self.history_rvs: list[int] = []
        self.history_start = 0  # watching from an rv below this answers 410

    def resource(self, group: str, version: str, plural: str) -> Resource:
        try:
            return self.resources[(group, version, plural)]
        except KeyError:
            raise ApiError(404, "NotFound", f"the server could not find {plural}") from None

    def _validate(self, res: Resource, obj: dict[str, Any]) -> None:
        errors = sorted(res.validator.iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            path = ".".join(str(p) for p in first.path)
            raise ApiError(422, "Invalid", f"{res.kind} is invalid: {path}: {first.message}")

    def _record(self, res: Resource, event: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, res.plural, event, copy.deepcopy(obj)))
        self.history_rvs.append(self.rv)
        self.cond.notify_all()

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def list_objects(
        self,
        res: Resource,
        namespace: str | None,
        selector: str,
        fields: str = "",
        *,
        limit: int = 0,
        token: str = "",
    ) -> dict[str, Any]:
        """A list, in chunks of `limit` when asked: `metadata.continue` carries the list's
        resourceVersion and the key to resume after (410 once that version is compacted)."""
        with self.cond:
            list_rv, after_key = self.rv, None
            if token:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                list_rv, after_key = state["rv"], tuple(state["after"])
                if list_rv < self.history_start:
                    raise ApiError(410, "Expired", "the continue token has expired")
            keys = [
                key
                for key, o in sorted(self.objects.items())
                if key[0] == res.plural
                and (namespace is None or key[1] == namespace)
                and (after_key is None or key > after_key)
                and match_labels(selector, o["metadata"].get("labels") or {})
                and match_fields(fields, o)
            ]
            more = bool(limit) and len(keys) > limit
            keys = keys[:limit] if limit else keys
            metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
            if more:
                metadata["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"rv": list_rv, "after": list(keys[-1])}).encode()
                ).decode()
            return {
                "apiVersion": res.api_version,
                "kind": f"{res.kind}List",
                "metadata": metadata,
                "items": [copy.deepcopy(self.objects[key]) for key in keys],
            }

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self.cond:
            obj = self.objects.get((res.plural, namespace, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{res.plural}.{res.group} "{name}" not found')
            return copy.deepcopy(obj)

    def create(self, res: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        obj.pop("status", None)
        name = meta.get("name") or ""
        with self.cond:
            if (res.plural, namespace, name) in self.objects:
                raise ApiError(
                    409, "AlreadyExists", f'{res.plural}.{res.group} "{name}" already exists'
                )
            meta.update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=now_rfc3339(),
            )
            self._validate(res, obj)
            meta["resourceVersion"] = self._next_rv()
            self.objects[(res.plural, namespace, name)] = obj
            self._record(res, "ADDED", obj)
            return copy.deepcopy(obj)

    def _write(
        self, res: Resource, namespace: str, name: str, new: dict[str, Any], *, status: bool
    ) -> dict[str, Any]:
        key = (res.plural, namespace, name)
        with self.cond:
            old = self.objects.get(key)
            if old is None:
                raise ApiError(404, "NotFound", f'{res.plural}.{res.group} "{name}" not found')
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {res.plural}.{res.group} "{name}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            obj = copy.deepcopy(old)
            if res.plural == "events":  # no spec/status split: every field but metadata
                obj = {**copy.deepcopy(new), "metadata": copy.deepcopy(old["metadata"])}
            elif status:
                obj["status"] = copy.deepcopy(new.get("status") or {})
            else:
                meta = new.get("metadata") or {}
                for field in ("labels", "annotations", "finalizers"):
                    if field in meta:
                        obj["metadata"][field] = copy.deepcopy(meta[field])
                if new.get("spec") != old.get("spec"):
                    obj["spec"] = copy.deepcopy(new.get("spec"))
                    obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if obj == old:
                return copy.deepcopy(old)  # a no-op write does not bump resourceVersion
            self._validate(res, obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.objects[key] = obj
            self._record(res, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def replace(
        self, res: Resource, ns: str, name: str, body: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        return self._write(res, ns, name, body, status=status)

    def patch(
        self, res: Resource, ns: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        with self.cond:
            current = self.get(res, ns, name)
            merged = merge_patch(current, patch)
            if "resourceVersion" not in (
                (patch.get("metadata") or {}) if isinstance(patch, dict) else {}
            ):
                merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._write(res, ns, name, merged, status=status)

    def delete(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self.cond:
            obj = self.objects.pop((res.plural, namespace, name), None)
            if obj is None:
                raise ApiError(404, "NotFound", f'{res.plural}.{res.group} "{name}" not found')
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._record(res, "DELETED", obj)
            return copy.deepcopy(obj)

    def expire(self) -> None:
        """Compact the history: every resourceVersion seen so far is now too old to watch from."""
        with self.cond:
            self.history_start = self.rv + 1
            self.history = [h for h in self.history if h[0] >= self.history_start]
            self.history_rvs = [h[0] for h in self.history]

    def after(self, position: int) -> list[tuple[int, str, str, dict[str, Any]]]:
        """History entries newer than `position` (call with the lock held)."""
        return self.history[bisect.bisect_right(self.history_rvs, position) :]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class KubeEmulator:
    """`with KubeEmulator() as kube:` serves on 127.0.0.1:<free port> in a thread."""

    def __init__(
        self,
        crd_dir: Path | str | None = None,
        *,
        port: int = 0,
        bookmark_seconds: float = 1.0,
    ) -> None:
        if crd_dir is None:
            from django.conf import settings

            crd_dir = settings.FLUX_CRDS_DIR
        crd_dir = Path(crd_dir)
        self.store = Store(load_resources(crd_dir))
        self.port = port
        self.bookmark_seconds = bookmark_seconds
        self.requests: list[tuple[str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut_next = threading.Event()
        self._generation = 0  # bumped by drop_watches/down: open watches end
        self.watches_opened = threading.Semaphore(0)
        self.watch_count = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> KubeEmulator:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        server = _Server(("127.0.0.1", self.port), self._handler_class())
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="kube-emulator", daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop answering and cut every open connection, as a crashed apiserver would."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self.drop_watches(abrupt=True)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path | str, *, context: str = "emulator") -> Path:
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "emulator-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": "Bearer emulator-token"}
        return client.ApiClient(cfg)

    # -- faults ---------------------------------------------------------------------------------
    def cut_next_event(self) -> None:
        """The next watch event is sent half-way, then the connection dies."""
        self._cut_next.set()

    def expire(self, *, drop_watches: bool = True) -> None:
        self.store.expire()
        if drop_watches:
            self.drop_watches()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        with self.store.cond:
            self._generation += 1
            self.store.cond.notify_all()
        if abrupt:
            with self._lock:
                sockets = list(self._sockets)
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # -- HTTP -----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(_Handler):
            emu = emulator

        return Handler


_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?$"
)
_CORE_PATH = re.compile(
    r"^/api/(?P<version>v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>events)(?:/(?P<name>[^/]+))?$"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emu: KubeEmulator

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.emu._lock:
            self.emu._sockets.add(self.connection)

    def finish(self) -> None:
        with self.emu._lock:
            self.emu._sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError:
            raise ApiError(400, "BadRequest", "the body is not JSON") from None

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.emu.requests.append((method, self.path))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        match = _PATH.match(parts.path) or _CORE_PATH.match(parts.path)
        try:
            if not match:
                raise ApiError(404, "NotFound", f"the server could not find {parts.path}")
            store = self.emu.store
            group = match.groupdict().get("group") or ""
            res = store.resource(group, match["version"], match["plural"])
            ns, name, sub = match["ns"], match["name"], match.groupdict().get("sub")
            status = sub == "status"
            if method == "GET" and name is None:
                if query.get("watch") in ("true", "1"):
                    self._watch(res, ns, query)
                    return
                found = store.list_objects(
                    res,
                    ns,
                    query.get("labelSelector", ""),
                    query.get("fieldSelector", ""),
                    limit=int(query.get("limit") or 0),
                    token=query.get("continue", ""),
                )
                self._send_json(200, found)
            elif method == "GET":
                self._send_json(200, store.get(res, ns or "", name))
            elif method == "POST" and name is None and ns:
                self._send_json(201, store.create(res, ns, self._body()))
            elif method == "PUT" and name and ns:
                self._send_json(200, store.replace(res, ns, name, self._body(), status=status))
            elif method == "PATCH" and name and ns:
                self._send_json(200, store.patch(res, ns, name, self._body(), status=status))
            elif method == "DELETE" and name and ns:
                self._send_json(200, store.delete(res, ns, name))
            else:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")
        except ApiError as exc:
            self._send_json(exc.code, exc.status())

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # -- watch ----------------------------------------------------------------------------------
    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        if self.emu._cut_next.is_set() and kind != "BOOKMARK":
            self.emu._cut_next.clear()
            half = line[: len(line) // 2]
            self.wfile.write(b"%x\r\n%s" % (len(line), half))
            self.wfile.flush()
            raise ConnectionAbortedError("cut mid-event")
        self._chunk(line)

    def _watch(self, res: Resource, ns: str | None, query: dict[str, str]) -> None:
        emu, store = self.emu, self.emu.store
        selector = query.get("labelSelector", "")
        fields = query.get("fieldSelector", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        since = query.get("resourceVersion", "")

        def wanted(plural: str, obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return (
                plural == res.plural
                and (ns is None or meta.get("namespace") == ns)
                and match_labels(selector, meta.get("labels") or {})
                and match_fields(fields, obj)
            )

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with store.cond:
            generation = emu._generation
            emu.watch_count += 1
            if since in ("", "0"):  # "any": the current state as ADDED events
                initial = [o for (p, _, _), o in sorted(store.objects.items()) if wanted(p, o)]
                pending = [("ADDED", copy.deepcopy(o)) for o in initial]
                position = store.rv
            elif int(since) < store.history_start - 1:
                pending, position = [], store.rv
                expired = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f"too old resource version: {since} ({store.history_start - 1})",
                    "reason": "Expired",
                    "code": 410,
                }
                pending.append(("ERROR", expired))
            else:
                position = int(since)
                pending = []
        emu.watches_opened.release()
        deadline = time.monotonic() + timeout
        last_sent = time.monotonic()
        try:
            while True:
                for kind, obj in pending:
                    self._event(kind, obj)
                    last_sent = time.monotonic()
                    if kind == "ERROR":
                        self._chunk(b"")
                        return
                with store.cond:
                    while True:
                        fresh = [
                            (rv, event, obj)
                            for rv, plural, event, obj in store.after(position)
                            if wanted(plural, obj)
                        ]
                        if fresh or emu._generation != generation:
                            break
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        wait = min(left, emu.bookmark_seconds) if bookmarks else left
                        if not store.cond.wait(wait) and bookmarks:
                            break
                    if emu._generation != generation:
                        self._chunk(b"")
                        return
                    pending = [(event, obj) for _, event, obj in fresh]
                    if fresh:
                        position = fresh[-1][0]
                    elif store.rv > position:
                        position = max(position, store.rv)
                    current_rv = position
                if not pending:
                    if time.monotonic() >= deadline:
                        self._chunk(b"")
                        return
                    if bookmarks and time.monotonic() - last_sent >= emu.bookmark_seconds:
                        self._event(
                            "BOOKMARK",
                            {
                                "apiVersion": res.api_version,
                                "kind": res.kind,
                                "metadata": {"resourceVersion": str(current_rv)},
                            },
                        )
                        last_sent = time.monotonic()
        except (ConnectionError, OSError):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


# -- a tiny Flux -------------------------------------------------------------------------------
_KIND_API = {
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
}
MANAGED = {"openova.io/managed-by": "flux", "app.kubernetes.io/managed-by": "flux"}


def condition(
    type_: str, status: str, reason: str, message: str, generation: int
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
        "observedGeneration": generation,
    }


class Flux:
    """Drives objects in the emulator through what kustomize-, helm- and source-controller do."""

    def __init__(self, emulator: KubeEmulator) -> None:
        self.emu = emulator

    def _res(self, kind: str) -> Resource:
        return self.emu.store.resource(*_KIND_API[kind])

    def create(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "flux-system",
        labels: dict[str, str] | None = None,
        spec: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        default_spec = {
            "Kustomization": {
                "interval": "10m",
                "prune": True,
                "path": f"./{name}",
                "sourceRef": {"kind": "GitRepository", "name": name},
            },
            "HelmRelease": {
                "interval": "10m",
                "chart": {
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.5.4",
                        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                    }
                },
            },
            "GitRepository": {
                "interval": "1m",
                "url": f"https://gitea.example/{name}.git",
                "ref": {"branch": "main"},
            },
        }[kind]
        body = {
            "apiVersion": "/".join(_KIND_API[kind][:2]),
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {**MANAGED, **(labels or {})},
            },
            "spec": spec or default_spec,
        }
        return self.emu.store.create(self._res(kind), namespace, body)

    def delete(self, kind: str, name: str, *, namespace: str = "flux-system") -> None:
        self.emu.store.delete(self._res(kind), namespace, name)

    CONTROLLERS = {
        "Kustomization": "kustomize-controller",
        "HelmRelease": "helm-controller",
        "GitRepository": "source-controller",
    }

    def event(
        self,
        kind: str,
        name: str,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        namespace: str = "flux-system",
        revision: str = "",
    ) -> dict[str, Any]:
        """Record a core/v1 Event for a Flux object, as its controller does (the same reason
        again bumps `count` and `lastTimestamp` of the existing Event)."""
        store = self.emu.store
        res = store.resource("", "v1", "events")
        target = store.get(self._res(kind), namespace, name)
        controller = self.CONTROLLERS[kind]
        key = f"{name}.{abs(hash((kind, reason, message))) % 16**12:012x}"
        annotations = {f"{_KIND_API[kind][0]}/revision": revision} if revision else {}
        with store.cond:
            existing = store.objects.get(("events", namespace, key))
        if existing is not None:
            return store.replace(
                res,
                namespace,
                key,
                {**existing, "count": existing["count"] + 1, "lastTimestamp": now_rfc3339()},
            )
        return store.create(
            res,
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": key, "annotations": annotations},
                "involvedObject": {
                    "apiVersion": target["apiVersion"],
                    "kind": kind,
                    "name": name,
                    "namespace": namespace,
                    "uid": target["metadata"]["uid"],
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": now_rfc3339(),
                "lastTimestamp": now_rfc3339(),
                "source": {"component": controller},
                "reportingComponent": controller,
            },
        )

    def set_status(self, kind: str, name: str, namespace: str, **status: Any) -> dict[str, Any]:
        """Merge `status` into the object's status (conditions by type, each stamped with the
        current generation), as a controller writes its /status subresource."""
        res = self._res(kind)
        obj = self.emu.store.get(res, namespace, name)
        generation = obj["metadata"]["generation"]
        current = obj.get("status") or {}
        new = {**current, **status, "observedGeneration": generation}
        conditions = {c["type"]: c for c in current.get("conditions", [])}
        for cond in status.get("conditions", []):
            cond["observedGeneration"] = generation
            old = conditions.get(cond["type"])
            if old and old["status"] == cond["status"]:
                cond["lastTransitionTime"] = old["lastTransitionTime"]
            conditions[cond["type"]] = cond
        new["conditions"] = [
            conditions[t]
            for t in ("Ready", "Reconciling", "Stalled", "Released", "ArtifactInStorage")
            if t in conditions
        ]
        for t in ("Reconciling", "Stalled"):
            if t not in [c["type"] for c in status.get("conditions", [])] and t in conditions:
                new["conditions"] = [c for c in new["conditions"] if c["type"] != t]
        return self.emu.store.replace(res, namespace, name, {"status": new}, status=True)

    def progressing(
        self, kind: str, name: str, revision: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        msg = (
            f"Fetching manifests for revision {revision} with a timeout of 9m30s"
            if kind == "Kustomization"
            else "Reconciliation in progress"
        )
        conds = [
            condition("Reconciling", "True", "Progressing", msg, 0),
            condition("Ready", "Unknown", "Progressing", "Reconciliation in progress", 0),
        ]
        return self.set_status(kind, name, namespace, conditions=conds)

    def ready(
        self, kind: str, name: str, revision: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        if kind == "Kustomization":
            return self.set_status(
                kind,
                name,
                namespace,
                conditions=[
                    condition(
                        "Ready",
                        "True",
                        "ReconciliationSucceeded",
                        f"Applied revision: {revision}",
                        0,
                    )
                ],
                lastAppliedRevision=revision,
                lastAttemptedRevision=revision,
            )
        if kind == "GitRepository":
            sha = revision.rsplit(":", 1)[-1]
            return self.set_status(
                kind,
                name,
                namespace,
                conditions=[
                    condition(
                        "Ready",
                        "True",
                        "Succeeded",
                        f"stored artifact for revision '{revision}'",
                        0,
                    ),
                    condition(
                        "ArtifactInStorage",
                        "True",
                        "Succeeded",
                        f"stored artifact for revision '{revision}'",
                        0,
                    ),
                ],
                artifact={
                    "path": f"gitrepository/{namespace}/{name}/{sha}.tar.gz",
                    "url": f"http://source-controller.flux-system.svc.cluster.local./gitrepository/{namespace}/{name}/{sha}.tar.gz",
                    "revision": revision,
                    "digest": "sha256:" + "0" * 64,
                    "lastUpdateTime": now_rfc3339(),
                    "size": 1024,
                },
            )
        return self.released(name, namespace=namespace, fresh=True)

    def released(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        config_digest: str = "",
        fresh: bool = False,
    ) -> dict[str, Any]:
        """helm-controller installed the release (`fresh`, or no history yet), or upgraded it
        (its spec or its values changed): a new Helm revision on top of the history, with the
        digest of the values it was released with."""
        obj = self.emu.store.get(self._res("HelmRelease"), namespace, name)
        history = [] if fresh else (obj.get("status") or {}).get("history") or []
        chart = self._chart(name, namespace)
        action = "upgrade" if history else "install"
        reason = "UpgradeSucceeded" if history else "InstallSucceeded"
        version = history[0]["version"] + 1 if history else 1
        message = (
            f"Helm {action} succeeded for release {namespace}/{name}.v{version} "
            f"with chart {chart[0]}@{chart[1]}"
        )
        entry = {
            "name": name,
            "namespace": namespace,
            "version": version,
            "status": "deployed",
            "chartName": chart[0],
            "chartVersion": chart[1],
            "appVersion": chart[1],
            "configDigest": config_digest or "sha256:" + "1" * 64,
            "digest": "sha256:" + "2" * 64,
            "firstDeployed": history[0]["firstDeployed"] if history else now_rfc3339(),
            "lastDeployed": now_rfc3339(),
        }
        superseded = [{**h, "status": "superseded"} for h in history[:4]]
        return self.set_status(
            "HelmRelease",
            name,
            namespace,
            conditions=[
                condition("Ready", "True", reason, message, 0),
                condition("Released", "True", reason, message, 0),
            ],
            lastAttemptedRevision=chart[1],
            lastAttemptedReleaseAction=action,
            history=[entry, *superseded],
        )

    def _chart(self, name: str, namespace: str) -> tuple[str, str]:
        """The chart name and version the HelmRelease asks for."""
        obj = self.emu.store.get(self._res("HelmRelease"), namespace, name)
        spec = (obj.get("spec") or {}).get("chart", {}).get("spec", {})
        return spec.get("chart", "podinfo"), spec.get("version", "6.5.4")

    def upgrade_failed(
        self, name: str, error: str, *, failures: int, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        """An upgrade to the chart the spec asks for failed `failures` times (remediated by
        rolling back while retries last); the deployed release stays the previous one."""
        chart = self._chart(name, namespace)
        message = f"Helm upgrade failed for release {namespace}/{name} with chart {chart[0]}@{chart[1]}: {error}"
        return self.set_status(
            "HelmRelease",
            name,
            namespace,
            conditions=[
                condition("Ready", "False", "UpgradeFailed", message, 0),
                condition("Released", "False", "UpgradeFailed", message, 0),
            ],
            lastAttemptedRevision=chart[1],
            lastAttemptedReleaseAction="upgrade",
            upgradeFailures=failures,
            failures=failures,
        )

    def install_failed(
        self, name: str, revision: str, error: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        message = (
            f"Helm install failed for release {namespace}/{name} with chart podinfo@6.5.4: {error}"
        )
        return self.set_status(
            "HelmRelease",
            name,
            namespace,
            conditions=[
                condition("Ready", "False", "InstallFailed", message, 0),
                condition("Released", "False", "InstallFailed", message, 0),
                condition(
                    "Stalled", "True", "RetriesExceeded", "Failed to install after 1 attempt(s)", 0
                ),
            ],
            lastAttemptedRevision=revision,
            lastAttemptedReleaseAction="install",
            installFailures=1,
            failures=1,
        )

    def dependency_not_ready(
        self, kind: str, name: str, dependency: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        return self.set_status(
            kind,
            name,
            namespace,
            conditions=[
                condition(
                    "Ready",
                    "False",
                    "DependencyNotReady",
                    f"dependency '{dependency}' is not ready",
                    0,
                )
            ],
        )

    def source_not_found(
        self, kind: str, name: str, source: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        return self.set_status(
            kind,
            name,
            namespace,
            conditions=[
                condition("Ready", "False", "ArtifactFailed", f"Source '{source}' not found", 0)
            ],
        )

    def build_failed(
        self, name: str, revision: str, error: str, *, namespace: str = "flux-system"
    ) -> dict[str, Any]:
        return self.set_status(
            "Kustomization",
            name,
            namespace,
            conditions=[condition("Ready", "False", "BuildFailed", error, 0)],
            lastAttemptedRevision=revision,
        )
