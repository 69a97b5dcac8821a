from .app import create_app, load_examples

# Flags for driving the page with a headless Chromium in a container (the browser tests, the README's
# screenshot): no sandbox (no user namespaces there), no GPU, and nothing that calls home.
HEADLESS_CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync"]

__all__ = ["create_app", "load_examples", "HEADLESS_CHROMIUM_FLAGS"]
