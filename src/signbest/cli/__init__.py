"""The `signbest` command: each subcommand is one typed function (`signbest --help` lists them)."""
from __future__ import annotations

from . import data, training, models  # noqa: F401 - importing them registers their commands on `app`, in this order
from .app import app, check_set_form, main

__all__ = ["app", "check_set_form", "main"]
