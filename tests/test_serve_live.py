"""The served page's live camera (WebSocket /api/live) and timeline of long uploads (/api/timeline): the
protocol, who may connect, and a real headless Chromium whose fake camera plays a real WLASL sign video."""
from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest

from conftest import SHARED, write_holistic_npz
from test_serve import CHROMIUM, _browser, model, post, server, serving  # noqa: F401 - model, server: fixtures

websockets = pytest.importorskip("websockets.sync.client", reason="the live stream needs websockets (a dependency)")


def connect(url: str, origin: str | None = None, host: str | None = None):
    """A WebSocket to the server at `url`, sent as if from a page at `origin`, for the host name `host`."""
    import socket

    address, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((address, int(port)), timeout=10)
    return websockets.connect(f"ws://{host or address}:{port}/api/live", sock=sock, origin=origin, open_timeout=10)


def frame(t_ms: float, jpeg: bytes) -> bytes:
    return struct.pack("<d", t_ms) + jpeg


def test_a_long_upload_gets_its_timeline(server, model, tmp_path):
    from signbest.predict import Predictor
    from signbest.stream import stream_file

    url, _ = server
    long = write_holistic_npz(tmp_path / "long.npz", t=120)
    code, r = post(url, "long.npz", long.read_bytes(), path="/api/timeline")
    assert code == 200 and r["file"] == "long.npz" and r["frames"] == 120 and r["duration_s"] == pytest.approx(4.8)
    expected = stream_file(Predictor(*model), long)["timeline"]
    assert [s["gloss"] for s in r["timeline"]] == [s["gloss"] for s in expected]
    assert r["timeline"][-1]["end_s"] == pytest.approx(4.8) and 0 < r["unknown_below"] < 1
    code, r = post(url, "notes.npz", b"not a zip at all", path="/api/timeline")
    assert code == 415 and "notes.npz" in r["error"]


def test_live_streams_only_from_this_servers_own_page(server):
    url, _ = server
    from websockets.exceptions import InvalidStatus

    port = url.rsplit(":", 1)[1]
    for origin, host in (("http://evil.example", None), ("null", None), (None, "evil.example"),
                         ("http://127.0.0.1:1", None), (f"http://localhost:{port}", None)):  # another local page
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin, host)
        assert refused.value.response.status_code == 403, (origin, host)
    with connect(url, url) as ws, connect(url, None):  # the page's own origin; a client that is not a browser
        json.loads(ws.recv(timeout=30))  # answered (an error where the video extra is missing: next test)


def test_live_without_the_video_extra_says_how_to_get_it(server, monkeypatch):
    import signbest.serve.app as app

    monkeypatch.setattr(app, "video_supported", lambda: False)
    with connect(server[0]) as ws:
        assert "pip install 'signbest[video]'" in json.loads(ws.recv(timeout=10))["error"]


def test_live_protocol_answers_bad_frames_and_stop(server):
    pytest.importorskip("mediapipe", reason="live recognition needs the video extra (pip install -e '.[video]')")
    import cv2

    jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1].tobytes()
    with connect(server[0]) as ws:
        ws.send(b"short")
        assert "expected 8 bytes of time, then a JPEG" in json.loads(ws.recv(timeout=30))["error"]
        ws.send(frame(0.0, b"GIF89a not a jpeg"))
        assert "not a JPEG or PNG image" in json.loads(ws.recv(timeout=30))["error"]
        ws.send("hello")
        assert "binary messages" in json.loads(ws.recv(timeout=30))["error"]
        ws.send(frame(40.0, jpeg))
        answer = json.loads(ws.recv(timeout=30))
        assert answer["seen"] == {"body": False, "left": False, "right": False} and "top" not in answer
        ws.send(frame(20.0, jpeg))  # back in time
        assert "must increase" in json.loads(ws.recv(timeout=30))["error"]
        ws.send("stop")
        assert json.loads(ws.recv(timeout=30)) == {"done": True, "timeline": []}


# --- a model that knows a real sign video, for the fake camera ------------------------------------------

VIDEO_ID, GLOSS = "07083", "book"  # a WLASL100 val clip (98 frames)
GLOSSES = ("book", "drink", "computer", "chair", "go")


@pytest.fixture(scope="module")
def wlasl_model(tmp_path_factory):
    """A tiny model fine-tuned on the WLASL100 train clips of five glosses plus the camera's own clip: the
    browser test checks the live path (camera, frames, MediaPipe, windows, decoder, page), not how well a
    model generalises, which the results pages measure."""
    pytest.importorskip("mediapipe", reason="live recognition needs the video extra (pip install -e '.[video]')")
    root = SHARED / "wlasl100"
    if not (root / "videos" / f"{VIDEO_ID}.mp4").exists():
        pytest.skip(f"needs the shared WLASL100 videos ({root / 'videos'} is absent in this checkout)")
    from signbest.config import load_config
    from signbest.train.finetune import finetune

    rows = [r for r in csv.DictReader(open(root / "metadata.csv")) if r["gloss"] in GLOSSES
            and (r["split"] == "train" or r["video_id"] == VIDEO_ID or r["split"] == "val")]
    out = tmp_path_factory.mktemp("wlasl-live")
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "pose_file", "gloss", "label", "split", "signer"])
        for r in rows:
            split = "train" if r["split"] == "train" or r["video_id"] == VIDEO_ID else "dev"
            w.writerow([r["video_id"], root / r["pose_file"], r["gloss"], GLOSSES.index(r["gloss"]), split, r["signer_id"]])
    cfg = load_config("tiny", ["finetune.epochs=40", "finetune.num_frames=32"])
    finetune(cfg, out / "manifest.csv", out / "ft", progress=False)
    return out / "ft"


def write_y4m(video, path, still_s: float = 1.0):
    """The video as Chromium's fake camera reads it (YUV4MPEG2, 4:2:0), after `still_s` of its first frame
    (someone about to sign)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
        h, w = bgr.shape[:2]
    frames = [frames[0]] * int(25 * still_s) + frames
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode())
        for data in frames:
            f.write(b"FRAME\n" + data)
    return path


def test_the_live_page_recognises_a_sign_from_a_fake_camera(wlasl_model, tmp_path):
    from signbest.predict import Predictor
    from signbest.serve import HEADLESS_CHROMIUM_FLAGS, create_app

    sync_playwright = _browser()
    camera = write_y4m(SHARED / "wlasl100" / "videos" / f"{VIDEO_ID}.mp4", tmp_path / "camera.y4m")
    with serving(create_app(Predictor(wlasl_model), checkpoint=str(wlasl_model))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            *HEADLESS_CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto(url + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('glosses')")
        page.click("#live")
        page.wait_for_selector('body[data-live="on"] #livetop li', timeout=90_000)  # a first window scored
        page.wait_for_selector(f'#livesigns .sign[data-gloss="{GLOSS}"]', timeout=120_000)  # and the sign found
        assert "seen: body" in page.inner_text("#livestate")
        page.click("#live")  # stop: the camera is released, the final timeline stays
        page.wait_for_selector('body[data-live="off"]')
        page.wait_for_timeout(500)
        assert GLOSS in page.eval_on_selector_all("#livesigns .sign", "els => els.map(e => e.dataset.gloss)")
        browser.close()


def test_the_page_shows_the_timeline_of_a_long_upload(server, model, tmp_path):
    from signbest.predict import Predictor
    from signbest.serve import HEADLESS_CHROMIUM_FLAGS
    from signbest.stream import stream_file

    sync_playwright = _browser()
    long = write_holistic_npz(tmp_path / "long.npz", t=200)
    expected = stream_file(Predictor(*model), long)["timeline"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=HEADLESS_CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 375, "height": 700})  # a phone's width
        page.goto(server[0] + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('glosses')")
        page.check("#astimeline")
        page.set_input_files("#file", str(long))
        page.wait_for_selector('body[data-view="timeline"][data-state="done"] #track .seg', timeout=60_000)
        shown = page.eval_on_selector_all("#track .seg", "els => els.map(e => e.title)")
        assert [t.split(" ")[0] for t in shown] == [s["gloss"] for s in expected]
        chips = page.eval_on_selector_all("#segments .sign", "els => els.map(e => e.dataset.gloss)")
        assert chips == [s["gloss"] for s in expected if s["gloss"] != "unknown"]
        assert "8.0 s" in page.inner_text("#timelinefacts") and not page.is_visible("#results")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        browser.close()
