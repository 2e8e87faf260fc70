"""A small Hugging Face Hub stand-in on 127.0.0.1, for testing uploads without a network.

It speaks the part of the Hub HTTP API that ``huggingface_hub`` (2.x) uses to create a repository
and upload a folder, and records what is committed:

- ``GET /api/agent-harnesses``: the registry the client reads to build its user agent (only when
  ``HF_HUB_DISABLE_TELEMETRY`` is not set); answered empty.
- ``POST /api/repos/create``: create a model repository (409 if it exists, 403 outside the token's
  namespaces), like the real Hub, which also starts the repo with a ``.gitattributes`` file.
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: repository info (404 with
  ``X-Error-Code: RepoNotFound`` for a missing repo).
- ``POST /api/validate-yaml``: checks the README metadata block independently of the client (a
  mapping, string tags, a well-formed ``model-index`` with numeric metric values).
- ``POST /api/models/{repo}/preupload/{rev}``: says how each file is to be uploaded.
- ``POST /api/models/{repo}/commit/{rev}``: the NDJSON commit (``header``, ``file`` in base64,
  ``lfsFile`` by sha256 reference, ``deletedFile``/``deletedFolder``).
- ``POST /{repo}.git/info/lfs/objects/batch`` plus the upload (PUT) and verify URLs it hands out:
  the basic Git LFS transfer.

How the client picks an upload path: the server answers each file's ``uploadMode`` in preupload.
``"regular"`` files travel base64-encoded inside the commit. ``"lfs"`` files go through Xet storage
when the ``hf_xet`` package is installed (a separate CAS protocol this server does not speak), and
through the Git LFS batch API when it is not (or ``HF_HUB_DISABLE_XET`` is set). So by default every
file is answered ``"regular"``; pass ``lfs_suffixes`` (e.g. ``(".safetensors",)``) to exercise the LFS
path, together with Xet disabled on the client.

Failure simulation: a request whose bearer token is not ``token`` gets 401 ``Invalid credentials in
Authorization header``; ``fail(route, status=...)`` makes the next requests of a route fail with that
status; ``fail(route, drop=True)`` closes the connection without answering (a network failure).

Only the standard library is used for the server; PyYAML (a dependency of huggingface_hub) parses the
README metadata in ``validate-yaml``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml

# Every route the server knows, by the name used in `FakeHub.fail`.
ROUTES = (
    "agent_harnesses",
    "create_repo",
    "repo_info",
    "validate_yaml",
    "preupload",
    "commit",
    "lfs_batch",
    "lfs_upload",
    "lfs_verify",
)

_REPO_ID = r"(?P<repo>[\w.\-]+/[\w.\-]+)"
_ROUTE_PATTERNS = [
    ("GET", "agent_harnesses", re.compile(r"^/api/agent-harnesses$")),
    ("POST", "create_repo", re.compile(r"^/api/repos/create$")),
    ("POST", "validate_yaml", re.compile(r"^/api/validate-yaml$")),
    ("GET", "repo_info", re.compile(rf"^/api/models/{_REPO_ID}(?:/revision/(?P<rev>[^/]+))?$")),
    ("POST", "preupload", re.compile(rf"^/api/models/{_REPO_ID}/preupload/(?P<rev>[^/]+)$")),
    ("POST", "commit", re.compile(rf"^/api/models/{_REPO_ID}/commit/(?P<rev>[^/]+)$")),
    ("POST", "lfs_batch", re.compile(rf"^/{_REPO_ID}\.git/info/lfs/objects/batch$")),
    ("PUT", "lfs_upload", re.compile(rf"^/fake-lfs-storage/{_REPO_ID}/(?P<oid>[0-9a-f]{{64}})$")),
    ("POST", "lfs_verify", re.compile(rf"^/fake-lfs-verify/{_REPO_ID}$")),
]

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(content: bytes) -> str:
    """The object id git gives a file's content (`git hash-object`), which the Hub reports for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    """One repository on the fake Hub."""

    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)  # the tree at the head of `main`
    lfs_paths: set[str] = field(default_factory=set)  # paths of `files` stored through LFS
    commits: list[dict] = field(default_factory=list)  # {"oid", "summary", "added": {path: bytes}, "deleted": [..]}
    head: str = "0" * 40

    def committed_files(self) -> dict[str, bytes]:
        """Every file added by a commit (not the `.gitattributes` the Hub creates), last version wins."""
        result: dict[str, bytes] = {}
        for commit in self.commits:
            result.update(commit["added"])
        return result


@dataclass
class RecordedRequest:
    method: str
    path: str
    route: str | None
    status: int | None  # None when the connection was dropped


@dataclass
class _Failure:
    status: int | None
    drop: bool
    message: str
    error_code: str | None
    remaining: int | None  # None: every request of the route fails


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 (a free port) that behaves like the Hub for uploads.

    Use as a context manager; ``url`` is the endpoint to put in ``HF_ENDPOINT``::

        with FakeHub(token="hf_test") as hub:
            ...  # upload with token "hf_test" to hub.url
            hub.repos["fake-user/model"].committed_files()
    """

    def __init__(
        self,
        *,
        token: str = "hf_fake_write_token",
        user: str = "fake-user",
        organizations: tuple[str, ...] = (),
        lfs_suffixes: tuple[str, ...] = (),
    ) -> None:
        self.token = token
        self.user = user
        self.writable_namespaces = {user, *organizations}
        self.lfs_suffixes = tuple(lfs_suffixes)
        self.repos: dict[str, FakeRepo] = {}
        self.lfs_store: dict[str, bytes] = {}  # sha256 hex -> content
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[str] = []  # requests matching no known route
        self.invalid_requests: list[str] = []  # known routes called with a malformed body
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not running: use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        handler = type("BoundFakeHubHandler", (_FakeHubHandler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def fail(
        self,
        route: str,
        *,
        status: int | None = None,
        drop: bool = False,
        message: str = "Simulated failure",
        error_code: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next `times` requests of `route` fail (every request when `times` is None).

        Either answer `status` with `message` (and the `X-Error-Code` header when given), or, with
        ``drop=True``, close the connection without answering.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; known routes: {', '.join(ROUTES)}")
        if drop == (status is not None):
            raise ValueError("give exactly one of status=... or drop=True")
        self._failures[route] = _Failure(status, drop, message, error_code, times)

    def add_repo(self, repo_id: str, files: dict[str, bytes] | None = None, private: bool = False) -> FakeRepo:
        """Create a repository directly on the server (as if it already existed on the Hub)."""
        repo = FakeRepo(repo_id=repo_id, private=private, files={".gitattributes": GITATTRIBUTES, **(files or {})})
        self.repos[repo_id] = repo
        return repo

    def _take_failure(self, route: str) -> _Failure | None:
        with self._lock:
            failure = self._failures.get(route)
            if failure is None:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[route]
            return failure


class _FakeHubHandler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the per-server subclass
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format, *args):  # keep test output clean
        pass

    # ------------------------------------------------------------------ plumbing

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()  # the CRLF after the last chunk (no trailers are sent)
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
        # Recorded before answering: once the client has the answer, the test may already read `requests`.
        self._record(self.command, self._route, status)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _send_error(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if error_code:
            headers["X-Error-Code"] = error_code
        self._send_json(status, {"error": message}, headers)

    def _record(self, method: str, route: str | None, status: int | None) -> None:
        with self.hub._lock:
            self.hub.requests.append(RecordedRequest(method, urlsplit(self.path).path, route, status))

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        self._route = None
        body = self._read_body()
        for route_method, route, pattern in _ROUTE_PATTERNS:
            match = pattern.match(path)
            if match and route_method == method:
                break
        else:
            with self.hub._lock:
                self.hub.unexpected.append(f"{method} {self.path}")
            self._send_error(404, f"FakeHub does not implement {method} {path}")
            return
        self._route = route

        failure = self.hub._take_failure(route)
        if failure is not None and failure.drop:
            self._record(method, route, None)
            # Close without a status line: the client sees the connection dropped mid-request.
            self.close_connection = True
            self.connection.close()
            return
        if failure is not None:
            self._send_error(failure.status, failure.message, failure.error_code)
            return
        # Presigned storage URLs carry no Hub token, as on the real Hub (S3), nor does the public agent
        # registry; everything else needs the token.
        if route not in ("lfs_upload", "agent_harnesses") and not self._authorized():
            self._send_error(401, "Invalid credentials in Authorization header")
            return

        params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
        try:
            getattr(self, f"_handle_{route}")(body, **params)
        except _ClientMistake as mistake:
            with self.hub._lock:
                self.hub.invalid_requests.append(f"{method} {path}: {mistake}")
            self._send_error(400, str(mistake))

    def _existing_repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._send_error(404, "Repository not found", error_code="RepoNotFound")
        return repo

    def _writable_repo(self, repo_id: str) -> FakeRepo | None:
        """The repository, if it exists and the token may write to it (else the error is sent and None returned)."""
        repo = self._existing_repo(repo_id)
        if repo is not None and repo_id.split("/")[0] not in self.hub.writable_namespaces:
            self._send_error(403, f"You don't have write access to {repo_id}")
            return None
        return repo

    # ------------------------------------------------------------------ routes

    def _handle_agent_harnesses(self, body: bytes) -> None:
        # The client fetches this registry (to name the calling AI agent in its user agent) unless
        # HF_HUB_DISABLE_TELEMETRY is set; an empty one detects nothing.
        self._send_json(200, {"standardEnvVars": [], "harnesses": {}})

    def _handle_create_repo(self, body: bytes) -> None:
        payload = _json(body)
        name = payload.get("name")
        namespace = payload.get("organization") or self.hub.user
        if not isinstance(name, str) or not name:
            raise _ClientMistake("create: 'name' is missing")
        if payload.get("type") not in (None, "model"):
            raise _ClientMistake(f"create: FakeHub only hosts model repos, got type {payload.get('type')!r}")
        repo_id = f"{namespace}/{name}"
        if namespace not in self.hub.writable_namespaces:
            message = f'You don\'t have the rights to create a model under the namespace "{namespace}"'
            self._send_error(403, message)
            return
        if repo_id in self.hub.repos:
            self._send_json(409, {"error": "You already created this model repo", "url": f"{self.hub.url}/{repo_id}"})
            return
        self.hub.add_repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self._send_json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _handle_repo_info(self, body: bytes, repo: str, rev: str = "main") -> None:
        found = self._existing_repo(repo)
        if found is None:
            return
        if rev != "main":
            self._send_error(404, f"Invalid rev id: {rev}", error_code="RevisionNotFound")
            return
        siblings = [{"rfilename": path} for path in sorted(found.files)]
        self._send_json(200, {"id": repo, "sha": found.head, "private": found.private, "siblings": siblings})

    def _handle_validate_yaml(self, body: bytes) -> None:
        payload = _json(body)
        content = payload.get("content")
        if not isinstance(content, str):
            raise _ClientMistake("validate-yaml: 'content' must be the README text")
        errors = _metadata_errors(content)
        if errors:
            self._send_json(400, {"errors": [{"message": message} for message in errors], "warnings": []})
            return
        self._send_json(200, {"errors": [], "warnings": []})

    def _handle_preupload(self, body: bytes, repo: str, rev: str) -> None:
        found = self._writable_repo(repo)
        if found is None:
            return
        payload = _json(body)
        files = payload.get("files")
        if not isinstance(files, list) or not files:
            raise _ClientMistake("preupload: 'files' must be a non-empty list")
        answers = []
        for entry in files:
            path, size, sample = entry.get("path"), entry.get("size"), entry.get("sample")
            if not isinstance(path, str) or not isinstance(size, int) or not isinstance(sample, str):
                raise _ClientMistake(f"preupload: malformed file entry {entry!r}")
            base64.b64decode(sample, validate=True)
            mode = "lfs" if path.endswith(self.hub.lfs_suffixes) and self.hub.lfs_suffixes else "regular"
            remote_oid = None
            if path in found.files:
                content = found.files[path]
                remote_oid = hashlib.sha256(content).hexdigest() if mode == "lfs" else git_blob_sha1(content)
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
        self._send_json(200, {"files": answers, "commitOid": found.head})

    def _handle_commit(self, body: bytes, repo: str, rev: str) -> None:
        found = self._writable_repo(repo)
        if found is None:
            return
        if rev != "main":
            raise _ClientMistake(f"commit: FakeHub only has the 'main' branch, got {rev!r}")
        if "application/x-ndjson" not in self.headers.get("Content-Type", ""):
            raise _ClientMistake("commit: the body must be NDJSON (Content-Type application/x-ndjson)")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            raise _ClientMistake("commit: the first NDJSON line must be the header with a summary")
        added: dict[str, bytes] = {}
        lfs_added: set[str] = set()
        deleted: list[str] = []
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _ClientMistake(f"commit: unsupported encoding {value.get('encoding')!r}")
                added[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key == "lfsFile":
                oid = value.get("oid")
                if value.get("algo") != "sha256" or oid not in self.hub.lfs_store:
                    raise _ClientMistake(f"commit: LFS object {oid} of {value.get('path')!r} was never uploaded")
                if value.get("size") not in (None, len(self.hub.lfs_store[oid])):
                    raise _ClientMistake(f"commit: wrong size for LFS object of {value.get('path')!r}")
                added[value["path"]] = self.hub.lfs_store[oid]
                lfs_added.add(value["path"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                raise _ClientMistake(f"commit: unknown operation {key!r}")
        with self.hub._lock:
            for path in deleted:
                for existing in [p for p in found.files if p == path or p.startswith(path.rstrip("/") + "/")]:
                    del found.files[existing]
            found.files.update(added)
            found.lfs_paths = (found.lfs_paths - set(added)) | lfs_added
            oid = hashlib.sha1(f"{found.head}{sorted(added)}{len(found.commits)}".encode()).hexdigest()
            found.head = oid
            summary = lines[0]["value"]["summary"]
            found.commits.append({"oid": oid, "summary": summary, "added": added, "deleted": deleted})
        self._send_json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{repo}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": None,
                "success": True,
            },
        )

    def _handle_lfs_batch(self, body: bytes, repo: str) -> None:
        if self._writable_repo(repo) is None:
            return
        payload = _json(body)
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", []):
            raise _ClientMistake("lfs batch: FakeHub only supports the basic upload transfer")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            answer = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.hub.lfs_store:
                answer["actions"] = {
                    "upload": {"href": f"{self.hub.url}/fake-lfs-storage/{repo}/{oid}"},
                    "verify": {"href": f"{self.hub.url}/fake-lfs-verify/{repo}"},
                }
            objects.append(answer)
        self._send_json(200, {"transfer": "basic", "objects": objects})

    def _handle_lfs_upload(self, body: bytes, repo: str, oid: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise _ClientMistake("lfs upload: the content does not match its sha256")
        with self.hub._lock:
            self.hub.lfs_store[oid] = body
        self._send_json(200, {})

    def _handle_lfs_verify(self, body: bytes, repo: str) -> None:
        payload = _json(body)
        stored = self.hub.lfs_store.get(payload.get("oid"))
        if stored is None or len(stored) != payload.get("size"):
            self._send_error(404, "LFS object not found")
            return
        self._send_json(200, {"success": True})


class _ClientMistake(ValueError):
    """A request that the real Hub would reject as malformed (answered 400 and recorded)."""


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise _ClientMistake(f"the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise _ClientMistake("the JSON body must be an object")
    return payload


def _metadata_errors(readme: str) -> list[str]:
    """What the Hub would object to in a README's YAML metadata block (a small, independent subset)."""
    if not readme.startswith("---\n"):
        return []  # no metadata block: the Hub accepts it (with a warning)
    end = readme.find("\n---", 4)
    if end < 0:
        return ["the metadata block opened with '---' is never closed"]
    try:
        metadata = yaml.safe_load(readme[4:end])
    except yaml.YAMLError as error:
        return [f"invalid YAML: {error}"]
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return ["the metadata must be a mapping"]
    errors = []
    for key in ("tags", "datasets", "metrics"):
        value = metadata.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            errors.append(f"'{key}' must be a list of strings")
    for key in ("library_name", "license", "pipeline_tag"):
        if key in metadata and not isinstance(metadata[key], str):
            errors.append(f"'{key}' must be a string")
    model_index = metadata.get("model-index")
    if model_index is not None:
        if not isinstance(model_index, list) or not model_index:
            return errors + ["'model-index' must be a non-empty list"]
        for model in model_index:
            if not isinstance(model, dict) or not isinstance(model.get("name"), str):
                errors.append("each model-index entry needs a 'name'")
                continue
            for result in model.get("results") or []:
                task, dataset, metrics = result.get("task"), result.get("dataset"), result.get("metrics")
                if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                    errors.append("each model-index result needs task.type")
                if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), str) for k in ("type", "name")):
                    errors.append("each model-index result needs dataset.type and dataset.name")
                if not isinstance(metrics, list) or not metrics:
                    errors.append("each model-index result needs a non-empty 'metrics' list")
                    continue
                for metric in metrics:
                    value = metric.get("value") if isinstance(metric, dict) else None
                    if not isinstance(metric, dict) or not isinstance(metric.get("type"), str):
                        errors.append("each metric needs a 'type'")
                    elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                        errors.append(f"metric {metric['type']!r} needs a finite numeric 'value', got {value!r}")
    return errors


def main() -> None:
    """``python tests/fake_hub.py``: a stand-in Hub to try `hf-posenc push` on a machine without the Hub. It prints
    the two environment variables to set, serves until Ctrl-C, then lists what each repository received."""
    import signal
    import sys

    with FakeHub() as hub:
        print(f"export HF_ENDPOINT={hub.url} HF_TOKEN={hub.token}  # then: hf-posenc push FOLDER {hub.user}/NAME")
        print("serving; Ctrl-C (or SIGTERM) stops and lists what was uploaded", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        except (KeyboardInterrupt, SystemExit):
            pass
        for name, repo in sorted(hub.repos.items()):
            files = repo.committed_files()
            print(f"{name}: {len(files)} file(s): {', '.join(sorted(files))}", flush=True)


if __name__ == "__main__":
    main()
