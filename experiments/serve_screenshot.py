"""A screenshot of the `signbest serve` page recognising one clip, taken in headless Chromium (Debian's
package, driven by Playwright), for the README:

    python experiments/serve_screenshot.py --checkpoint runs/wlasl100/small/best/seed0/finetune \\
        --tokenizer runs/wlasl100/small/tokenizer-coupled-seed0 --clip ../shared/data/wlasl100/poses/00624.npz \\
        --out docs/serve-page.png

The page draws only normalised skeletons and glosses: no video frame of the clip's signer appears.
"""
from __future__ import annotations

import argparse
import socket
import threading
import time
import urllib.request
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from signbest.predict import Predictor
from signbest.serve import HEADLESS_CHROMIUM_FLAGS, create_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokenizer")
    ap.add_argument("--clip", required=True, help="a pose file or video to upload")
    ap.add_argument("--frame", type=int, default=12, help="frame of the animation to show")
    ap.add_argument("--out", default="docs/serve-page.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Predictor(args.checkpoint, args.tokenizer), checkpoint=args.checkpoint)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            urllib.request.urlopen(url + "api/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=HEADLESS_CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(url)
        page.wait_for_function("document.querySelector('#model').textContent.includes('glosses')")
        page.set_input_files("#file", args.clip)
        page.wait_for_selector('body[data-state="done"] #top5 li', timeout=120_000)
        page.click("#play")  # pause, then show one frame
        page.fill("#scrub", str(args.frame))
        page.dispatch_event("#scrub", "input")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out, full_page=True)
        print(page.inner_text("#top5"))
        browser.close()
    server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
