"""`policy-site preview`: the working copy served with live reload on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from site_tree import copy_project, edit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback only
        return response.read().decode("utf-8")


def _wait_for(url: str, text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            last = _get(url)
            if text in last:
                return last
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{text!r} did not appear at {url} within {seconds} s")


def test_preview_shows_an_edit_without_restarting(tmp_path: Path) -> None:
    """A saved change to the English text appears in the preview on its own."""
    root = copy_project(tmp_path)
    port = _free_port()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "form_service.cli", "--project", str(root), "preview",
         "--port", str(port), "--date", "2026-11-27"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/en/"
        html = _wait_for(url, "Version 1.0, effective 24 November 2026", 60)
        assert "livereload" in html
        edit(root / "content" / "en" / "index.md", "Mail servers.", "Mail servers and couriers.")
        _wait_for(url, "Mail servers and couriers.", 60)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
