"""`signbest serve`: a local page and a JSON API around one loaded `Predictor`.

    GET  /              the page (drop a clip, choose a file, or record from the webcam)
    GET  /api/health    {"status": "ok", "classes", "tokenizer", "checkpoint" (its name), "engine", "version"}
    GET  /api/glosses   {"glosses": [...]} in the model's label order
    GET  /api/card      {"card": Markdown}: the model card (what it recognises, its data, figures and limits)
    POST /api/predict   multipart field `file` -> top-5, the normalised units the model saw, token ids, times
    POST /api/timeline  multipart field `file` (a long video or pose file) -> its timeline of signs, as
                        `signbest predict --stream` writes it
    WS   /api/live      the camera, frame by frame -> the signs as they happen (serve/live.py)

    GET  /api/examples  {"examples": [{"name", "gloss"}]}: clips the server offers to try (`--examples`)
    POST /api/examples/N  the answer for example N, as /api/predict gives it, with "expected" (its gloss)
    GET  /favicon.ico   the page's icon (SVG)

Safe by default: the CLI binds to 127.0.0.1 and answers only requests addressed to a local name (the Host
header: a page on another site cannot reach it through DNS rebinding; `allowed_hosts` adds names), an
upload's body must arrive within `body_timeout_s` (a stalled upload is answered 408 and closed), an upload
must declare its size and stay under the limit,
its type is checked by name and by content, it lives in a temporary folder that is removed after the
answer, and a bad upload gets a JSON error (naming the user's file, never the temporary one) while the
server goes on serving. Requests run in a thread pool; the predictor serialises them, so answers never mix.
"""
from __future__ import annotations

import asyncio
import re
import tempfile
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketClose

from .. import __version__
from ..data.pool import POSE_SUFFIXES
from ..predict import Predictor
from ..stream import stream_file
from ..video.holistic import VIDEO_SUFFIXES
from .live import live_endpoint
from ..viz import BODY_CHAINS, HAND_CHAINS


def content_problem(head: bytes, suffix: str) -> str | None:
    """Why the first bytes of an upload do not look like a `suffix` file, or None when they do. The readers
    validate everything again; this keeps, say, an HTML page named .mp4 away from the video decoder."""
    zipped, text = head.startswith(b"PK\x03\x04"), head.lstrip()[:1] in (b"{", b"[")
    expected = {".npz": zipped, ".npy": head.startswith(b"\x93NUMPY"), ".parquet": head.startswith(b"PAR1"),
                ".json": text, ".webm": head.startswith(b"\x1a\x45\xdf\xa3"), ".mkv": head.startswith(b"\x1a\x45\xdf\xa3"),
                ".avi": head.startswith(b"RIFF"), ".mpg": head.startswith(b"\x00\x00\x01"),
                ".mpeg": head.startswith(b"\x00\x00\x01"), ".pose": not zipped and not text and len(head) > 8}
    ok = expected.get(suffix, head[4:8] == b"ftyp")  # mp4 / mov / m4v: an ISO media box
    return None if ok else f"its content is not a {suffix} file"


def safe_name(filename: str | None) -> str:
    """The upload's base name, with anything but letters, digits, dot, dash and underscore replaced."""
    name = re.sub(r"[^\w.\-]", "_", Path(filename or "upload").name)[-100:]
    return name.lstrip(".") or "upload"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


POLICY_VIOLATION = 1008  # the WebSocket close code for a refused stream
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")  # the names a local page is reached by
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" '
           'fill="#1a73e8"/><path d="M20 50V26a4 4 0 0 1 8 0v12V16a4 4 0 0 1 8 0v22V20a4 4 0 0 1 8 0v20l4-6a4 4 0 0 '
           '1 7 4l-9 16H20z" fill="#fff"/></svg>')


def host_name(header: str) -> str:
    """The host of a Host header, without its port: 'a.b:80' -> 'a.b', '[::1]:8000' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostAllowList:
    """ASGI middleware: requests whose Host header names another host get 400 and never reach the app.
    A WebSocket must also come from this server's own page (its Origin names the host and port the request
    is addressed to): browsers let any site open a WebSocket to localhost, so without this a page elsewhere,
    another local web app's too, could use the camera stream. Clients that are not browsers send no Origin."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app, self.allowed = app, {host_name(h) for h in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope["headers"])
            addressed = headers.get(b"host", b"").decode("latin-1").strip().lower()
            host = host_name(addressed)
            origin = headers.get(b"origin", b"").decode("latin-1").strip()
            problem = None
            if host not in self.allowed:
                problem = (f"this server answers requests for {', '.join(sorted(self.allowed))}, not '{host}' "
                           f"(signbest serve --allow-host NAME adds a name)")
            elif scope["type"] == "websocket" and origin and urlsplit(origin.lower()).netloc != addressed:
                problem = f"a live stream is accepted from this server's own page, not from '{origin}'"
            if problem and scope["type"] == "http":
                return await _error(400, problem)(scope, receive, send)
            if problem:  # refused before the handshake: the browser sees HTTP 403
                return await WebSocketClose(POLICY_VIOLATION, problem[:120])(scope, receive, send)
        await self.app(scope, receive, send)


def load_examples(source: str | Path | None, limit: int = 8) -> list[dict]:
    """Example clips for the page: the test (else val, else any) clips of a manifest, one per gloss as far
    as they go, or the pose files of a folder. Each: name, path, and the gloss when the manifest has it."""
    if source is None:
        return []
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in POSE_SUFFIXES)[:limit]
        return [{"name": p.name, "path": p, "gloss": None} for p in files]
    from ..data import read_manifest

    manifest = read_manifest(source)
    splits = {c.split for c in manifest.clips}
    split = next((s for s in ("test", "val") if s in splits), None)
    clips = [c for c in manifest.clips if split is None or c.split == split]
    chosen, seen = [], set()
    for clip in clips:  # one clip per gloss first, so the examples show different signs
        if clip.gloss not in seen:
            seen.add(clip.gloss)
            chosen.append(clip)
    chosen = (chosen + [c for c in clips if c not in chosen])[:limit]
    return [{"name": c.pose_file.name, "path": c.pose_file, "gloss": c.gloss if manifest.labelled else None}
            for c in chosen]


def create_app(predictor: Predictor, max_upload_mb: float = 50.0, checkpoint: str = "",
               allowed_hosts: tuple[str, ...] = (), body_timeout_s: float = 30.0, examples: list[dict] = (),
               max_live: int = 2):
    """The app; `allowed_hosts` are accepted besides the local names (LOCAL_HOSTS); `examples` (see
    `load_examples`) are offered on the page; `max_live` camera streams may run at once (serve/live.py)."""
    limit = int(max_upload_mb * 2**20)
    allowed = POSE_SUFFIXES | VIDEO_SUFFIXES
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "classes": len(predictor.glosses), "video": video_supported(), "live": max_live > 0, "tokenizer": predictor.tokenizer is not None,
                             "checkpoint": Path(checkpoint).name, "engine": predictor.engine, "version": __version__, "max_upload_mb": max_upload_mb})

    async def glosses(request: Request) -> Response:
        return JSONResponse({"glosses": predictor.glosses})

    async def card(request: Request) -> Response:
        return JSONResponse({"card": predictor.card})

    async def receive_upload(request: Request) -> tuple[str, bytes] | Response:
        """(the user's file name, its bytes), or the error response for a bad upload."""
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return _error(411, "the upload must declare its size (Content-Length)")
        if int(length) > limit:
            return _error(413, f"the upload is {int(length) / 2**20:.1f} MB; the limit is {max_upload_mb:g} MB")
        try:
            form = await asyncio.wait_for(request.form(max_files=1, max_fields=4), body_timeout_s)
        except asyncio.TimeoutError:  # a stalled upload: answered and closed, its spooled parts go with it
            return _error(408, f"the upload did not arrive within {body_timeout_s:g} s")
        except Exception as e:  # noqa: BLE001 - a malformed body is the client's error, not the server's end
            if "header" in str(e).lower() or "too large" in str(e).lower():
                return _error(400, "a part of the upload has an oversized header (a file name over 255 characters?): "
                                   "rename the file")
            return _error(400, f"could not read the upload as multipart form data: {str(e)[:200]}")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error(400, "send the clip as a multipart form field named 'file'")
        if len(upload.filename or "") > 255:
            return _error(400, f"the file name has {len(upload.filename)} characters; at most 255: rename the file")
        name = safe_name(upload.filename)
        suffix = Path(name).suffix.lower()
        if suffix not in allowed:
            return _error(415, f"{name}: unsupported file type {suffix or '(none)'}; send one of {', '.join(sorted(allowed))}")
        data = await upload.read()
        await form.close()
        if not data:
            return _error(400, f"{name}: the file is empty")
        problem = content_problem(data[:64], suffix)
        if problem:
            return _error(415, f"{name}: {problem}")
        return name, data

    async def answer_upload(request: Request, work) -> dict | Response:
        """`work(path)` on the upload, in a temporary folder removed after it: its result (the temporary
        folder taken out of names and messages), or the error response."""
        upload = await receive_upload(request)
        if isinstance(upload, Response):
            return upload
        name, data = upload
        with tempfile.TemporaryDirectory(prefix="signbest-serve-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                result = await run_in_threadpool(work, path)
            except Exception as e:  # noqa: BLE001 - one bad upload never stops the server
                result = {"error": f"{type(e).__name__}: {e}"}
            result = _user_facing(result, tmp, name)
        if "error" in result:
            return _error(422, result["error"])
        return result

    async def predict(request: Request) -> Response:
        result = await answer_upload(request, lambda path: predictor([path], 5, 64, True)[0])
        if isinstance(result, Response):
            return result
        result["top"] = [{"gloss": g, "p": p} for g, p in result["top"]]
        return JSONResponse({**result, "skeleton": {"hand": HAND_CHAINS, "body": BODY_CHAINS}})

    async def timeline(request: Request) -> Response:
        result = await answer_upload(request, lambda path: stream_file(predictor, path))
        if isinstance(result, Response):
            return result
        return JSONResponse({**result, "unknown_below": predictor.unknown_below})

    async def example_list(request: Request) -> Response:
        return JSONResponse({"examples": [{"name": e["name"], "gloss": e["gloss"]} for e in examples]})

    async def example(request: Request) -> Response:
        index = request.path_params["index"]
        if not 0 <= index < len(examples):
            return _error(404, f"there is no example {index} (the server has {len(examples)})")
        chosen = examples[index]
        result = (await run_in_threadpool(predictor, [chosen["path"]], 5, 64, True))[0]
        result = {**result, "file": chosen["name"], "expected": chosen["gloss"]}
        if "error" in result:
            return _error(422, result["error"].replace(str(chosen["path"]), chosen["name"]))
        result["top"] = [{"gloss": g, "p": p} for g, p in result["top"]]
        return JSONResponse({**result, "skeleton": {"hand": HAND_CHAINS, "body": BODY_CHAINS}})

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    routes = [Route("/", index), Route("/favicon.ico", favicon), Route("/favicon.svg", favicon), Route("/api/health", health), Route("/api/glosses", glosses), Route("/api/card", card), Route("/api/examples", example_list),
              Route("/api/examples/{index:int}", example, methods=["POST"]),
              Route("/api/predict", predict, methods=["POST"]), Route("/api/timeline", timeline, methods=["POST"]),
              WebSocketRoute("/api/live", live_endpoint(predictor, max_live, body_timeout_s))]
    return HostAllowList(Starlette(routes=routes), (*LOCAL_HOSTS, *allowed_hosts))


def video_supported() -> bool:
    """Whether videos can be read here (the video extra's MediaPipe is installed)."""
    import importlib.util

    return importlib.util.find_spec("mediapipe") is not None


def _user_facing(result: dict, tmp: str, name: str) -> dict:
    """The result with the temporary folder taken out of file names and messages."""
    out = {**result, "file": name}
    if "error" in out:
        out["error"] = out["error"].replace(str(Path(tmp) / name), name).replace(tmp, "")
    return out
