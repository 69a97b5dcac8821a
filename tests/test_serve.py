"""`signbest serve`: the JSON API against `signbest predict`, bad uploads, concurrent requests, and the page in
a real headless Chromium (Debian's package, driven by Playwright; skipped with a message where missing)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import SHARED

CHROMIUM = os.environ.get("SIGNBEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def model(synth_dir, tmp_path_factory):
    from signbest.config import load_config
    from signbest.train.finetune import finetune
    from signbest.train.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("serve-model")
    cfg = load_config("tiny", ["finetune.epochs=2", "tokenizer.epochs=1"])
    train_tokenizer(cfg, [synth_dir / "manifest.csv"], out / "tok", progress=False)
    finetune(cfg, synth_dir / "manifest.csv", out / "ft", progress=False)
    return out / "ft", out / "tok"


@contextlib.contextmanager
def serving(app):
    """`app` on a free 127.0.0.1 port in a background thread: its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(model, synth_dir, tmp_path_factory):
    """The app for the synthetic model; its temporary files go to a private folder."""
    from signbest.predict import Predictor
    from signbest.serve import create_app, load_examples

    tmp = tmp_path_factory.mktemp("serve-tmp")
    old, tempfile.tempdir = tempfile.tempdir, str(tmp)
    app = create_app(Predictor(*model), max_upload_mb=1.0, checkpoint=str(model[0]), allowed_hosts=("signs.example",),
                     body_timeout_s=1.0, examples=load_examples(synth_dir / "manifest.csv", limit=3))
    try:
        with serving(app) as url:
            yield url, tmp
    finally:
        tempfile.tempdir = old


def post(url: str, name: str, data: bytes, field: str = "file", path: str = "/api/predict") -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cli_predict(model, path: Path) -> list:
    r = subprocess.run([sys.executable, "-m", "signbest", "predict", "--checkpoint", str(model[0]), "--json", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-1500:]
    return json.loads(r.stdout)[0]["top"]


def test_api_matches_predict_and_describes_what_the_model_saw(server, model, synth_dir):
    url, _ = server
    health = json.loads(urllib.request.urlopen(url + "/api/health").read())
    glosses = json.loads(urllib.request.urlopen(url + "/api/glosses").read())["glosses"]
    assert health["status"] == "ok" and health["tokenizer"] and health["classes"] == len(glosses) == 6
    assert health["checkpoint"] == model[0].name and health["engine"] == "torch"  # no path of the server's disk
    card = json.loads(urllib.request.urlopen(url + "/api/card").read())["card"]
    assert card.startswith("# Sign recognition model: 6 glosses") and all(f"`{g}`" in card for g in glosses)
    assert str(model[0].parent) not in card
    clip = sorted((synth_dir / "poses").glob("*.npz"))[0]
    status, r = post(url, clip.name, clip.read_bytes())
    assert status == 200 and r["file"] == clip.name
    expected = cli_predict(model, clip)
    assert [t["gloss"] for t in r["top"]] == [g for g, _ in expected]
    assert [t["p"] for t in r["top"]] == pytest.approx([p for _, p in expected], abs=1e-6)
    n = r["frames"]
    assert set(r["units"]) == {"left", "right", "body"} and all(len(r["units"][p]) == n for p in r["units"])
    assert len(r["units"]["left"][0]) == 21 and len(r["units"]["body"][0]) == 7
    assert all(len(r["tokens"][p]) == n for p in ("left", "right", "body"))
    for p in ("left", "right", "body"):  # a token where the part is present, -1 (missing) where it is not
        for frame, ids in zip(r["units"][p], r["tokens"][p]):
            assert (ids >= 0) == any(j is not None for j in frame)
    assert r["timing"]["model_s"] > 0 and r["skeleton"]["hand"][0][0] == 0


@pytest.mark.parametrize("name,data,status,words", [
    ("notes.txt", b"hello", 415, ["notes.txt", "unsupported file type .txt"]),
    ("clip.npz", b"<html>not a zip</html>", 415, ["clip.npz", "not a .npz file"]),
    ("clip.mp4", b"<html>not a video</html>" * 3, 415, ["clip.mp4", "not a .mp4 file"]),
    ("empty.npz", b"", 400, ["empty.npz", "empty"]),
    ("broken.npz", b"PK\x03\x04" + b"\x00" * 200, 422, ["broken.npz"]),
    ("../../etc/evil.json", b'{"people": "nonsense"}', 422, ["evil.json"]),
])
def test_bad_uploads_get_a_clear_error_and_the_server_keeps_serving(server, name, data, status, words):
    url, tmp = server
    code, r = post(url, name, data)
    assert code == status and all(w in r["error"] for w in words), r
    assert "signbest-serve-" not in r["error"] and "Traceback" not in r["error"]
    assert json.loads(urllib.request.urlopen(url + "/api/health").read())["status"] == "ok"
    assert not list(Path(tmp).glob("signbest-serve-*")), "temporary upload folders must be removed"


def test_an_upload_over_the_limit_is_refused_before_it_is_read(server):
    import http.client

    host, port = server[0].removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/api/predict")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(2 << 20))  # declares 2 MB, sends a few bytes: answered at once
    conn.endheaders(b"--x\r\n")
    r = conn.getresponse()
    assert r.status == 413 and "the limit is 1 MB" in json.loads(r.read())["error"]
    conn.close()


def test_a_request_without_a_file_field_is_refused(server):
    code, r = post(server[0], "clip.npz", b"PK\x03\x04", field="video")
    assert code == 400 and "field named 'file'" in r["error"]


def test_concurrent_requests_get_their_own_answers(server, synth_dir):
    url, _ = server
    clips = sorted((synth_dir / "poses").glob("*.npz"))[::7][:6]
    alone = {c.name: post(url, c.name, c.read_bytes())[1]["top"] for c in clips}
    jobs = [clips[i % len(clips)] for i in range(24)]  # bounded: 24 requests, 8 at a time, on 127.0.0.1
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: (c.name, post(url, c.name, c.read_bytes())), jobs))
    for name, (code, r) in answers:
        assert code == 200 and r["file"] == name and r["top"] == alone[name]
    assert len({json.dumps(v) for v in alone.values()}) > 1, "the clips should not all get the same answer"


def _browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the browser test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    return playwright.sync_playwright


def _page(p, width: int = 1000):
    from signbest.serve import HEADLESS_CHROMIUM_FLAGS

    browser = p.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_CHROMIUM_FLAGS)
    return browser, browser.new_page(viewport={"width": width, "height": 760})


def test_page_in_a_real_browser_shows_the_same_top5_as_predict(server, model, synth_dir, tmp_path):
    sync_playwright = _browser()
    url, _ = server
    clip = SHARED / "wlasl100" / "poses"
    clip = next(iter(sorted(clip.glob("*.npz"))), None) if clip.exists() else None
    clip = clip or sorted((synth_dir / "poses").glob("*.npz"))[3]  # a real WLASL clip where present
    expected = cli_predict(model, clip)
    with sync_playwright() as p:
        browser, page = _page(p)
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('glosses')")
        page.set_input_files("#file", str(clip))
        page.wait_for_selector('body[data-state="done"] #top5 li', timeout=60_000)
        shown = page.eval_on_selector_all("#top5 li", "els => els.map(e => [e.dataset.gloss, Number(e.dataset.p)])")
        assert [g for g, _ in shown] == [g for g, _ in expected]
        assert [p for _, p in shown] == pytest.approx([p for _, p in expected], abs=1e-6)
        assert page.locator("#tokens td.now").count() == 3  # the current frame's three token ids are highlighted
        assert "ms" in page.inner_text("#timing")
        shot = Path(os.environ.get("SIGNBEST_SCREENSHOT_DIR", tmp_path)) / "serve-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        bad = tmp_path / "notes.npz"
        bad.write_bytes(b"definitely not a zip")
        page.set_input_files("#file", str(bad))
        page.wait_for_selector('body[data-state="error"]')
        assert "notes.npz" in page.inner_text("#status") and "not a .npz file" in page.inner_text("#status")
        browser.close()


def raw_request(url: str, head: str, body: bytes = b"", wait: float = 10.0) -> bytes:
    """Send raw bytes (a request that urllib would not send) and read until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                return b"".join(chunks) + b"<still open>"
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_only_local_names_reach_the_server(server):
    url, _ = server
    port = url.rsplit(":", 1)[1]
    for host, status in (("localhost", 200), (f"127.0.0.1:{port}", 200), (f"[::1]:{port}", 200),
                         ("signs.example", 200), (f"attacker.example:{port}", 400), ("", 400)):
        answer = raw_request(url, f"GET /api/health HTTP/1.1\nHost: {host}\nConnection: close\n")
        assert answer.split(b" ", 2)[1] == str(status).encode(), (host, answer[:200])
    assert b"not 'attacker.example'" in raw_request(
        url, "GET / HTTP/1.1\nHost: attacker.example\nConnection: close\n")


def test_a_stalled_upload_is_answered_and_closed(server):
    url, tmp = server
    before = set(Path(tmp).iterdir())
    head = ("POST /api/predict HTTP/1.1\nHost: localhost\nContent-Type: multipart/form-data; boundary=x\n"
            "Content-Length: 100000\n")
    started = time.monotonic()
    answer = raw_request(url, head, b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.npz\"\r\n\r\nPK",
                         wait=15)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer
    assert not answer.endswith(b"<still open>") and time.monotonic() - started < 10  # closed, not left hanging
    assert set(Path(tmp).iterdir()) == before  # nothing of it left in the temporary folder


def test_favicon_and_what_the_page_is_told(server):
    url, _ = server
    with urllib.request.urlopen(url + "/favicon.ico") as r:
        assert r.headers["Content-Type"].startswith("image/svg+xml") and r.read().startswith(b"<svg")
    health = json.loads(urllib.request.urlopen(url + "/api/health").read())
    import importlib.util
    assert health["video"] == (importlib.util.find_spec("mediapipe") is not None)


def test_examples_are_offered_and_answered(server, model, synth_dir):
    from signbest.data import read_manifest

    url, _ = server
    offered = json.loads(urllib.request.urlopen(url + "/api/examples").read())["examples"]
    test_clips = [c for c in read_manifest(synth_dir / "manifest.csv").clips if c.split == "test"]
    assert len(offered) == 3 and len({e["gloss"] for e in offered}) == 3  # one per sign first
    first = next(c for c in test_clips if c.pose_file.name == offered[0]["name"])
    with urllib.request.urlopen(urllib.request.Request(url + "/api/examples/0", b"", method="POST")) as r:
        answer = json.loads(r.read())
    assert answer["expected"] == first.gloss and answer["file"] == first.pose_file.name
    assert [t["gloss"] for t in answer["top"]] == [g for g, _ in cli_predict(model, first.pose_file)]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(url + "/api/examples/9", b"", method="POST"))
    assert missing.value.code == 404


def test_the_page_fits_a_phone_screen(server, synth_dir):
    """375 px wide (a small phone): nothing wider than the screen, before and after a result."""
    sync_playwright = _browser()
    url, _ = server
    with sync_playwright() as p:
        browser, page = _page(p, width=375)
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('glosses')")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.click("#examples button")  # the first example, as a visitor without clips would
        page.wait_for_selector('body[data-state="done"] #top5 li', timeout=60_000)
        assert "the example is" in page.inner_text("#status")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.querySelector('#skeleton').getBoundingClientRect().right") <= 375
        browser.close()


def test_page_recognises_a_real_video(server, model, tmp_path):
    pytest.importorskip("mediapipe", reason="video upload needs the video extra (pip install -e '.[video]')")
    video = SHARED / "pose-samples" / "test_video.mp4"
    if not video.exists():
        pytest.skip(f"needs the shared video {video} (absent in this checkout)")
    sync_playwright = _browser()
    local = tmp_path / "sign.mp4"
    shutil.copy(video, local)
    expected = cli_predict(model, local)
    with sync_playwright() as p:
        browser, page = _page(p)
        page.goto(server[0] + "/")
        page.set_input_files("#file", str(local))
        page.wait_for_selector('body[data-state="done"] #top5 li', timeout=120_000)
        shown = page.eval_on_selector_all("#top5 li", "els => els.map(e => e.dataset.gloss)")
        assert shown == [g for g, _ in expected]
        assert "pose extraction" in page.inner_text("#timing")
        browser.close()


def test_the_serve_command_listens_on_localhost_and_refuses_bad_options(model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "signbest", "serve", "--checkpoint", str(model[0]), "--port", str(port)]
    bad = subprocess.run(cmd + ["--max-upload-mb", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--max-upload-mb" in bad.stderr and "Traceback" not in bad.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read())
                break
            except OSError:
                time.sleep(0.1)
        assert health["classes"] == 6 and not health["tokenizer"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out
