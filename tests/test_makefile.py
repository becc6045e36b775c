"""The Makefile's set-up steps on this machine (root) and on GitHub's hosted runners (a user
with sudo, a preinstalled browser, PostgreSQL and Redis as service containers).

The system tools the steps call (id, sudo, apt-get, service, redis-server) are
stand-in scripts early on PATH that write down how they were called, so the
steps run for real without installing or starting anything.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from site_tree import ROOT

TOOLS = ("sudo", "apt-get", "service", "pg_ctlcluster", "redis-server")


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    """A folder of stand-in tools; each appends its name and arguments to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in TOOLS:
        script = f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n'
        if tool == "sudo":
            script += 'exec "$@"\n'  # sudo runs the command it is given
        _executable(bin_dir / tool, script)
    return log


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _make(target: str, calls: Path, uid: int, **variables: str) -> subprocess.CompletedProcess[str]:
    bin_dir = calls.parent / "bin"
    _executable(bin_dir / "id", f"#!/bin/sh\necho {uid}\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("POLICY_CHROMIUM", None)
    args = [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(["make", "--no-print-directory", target, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _logged(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_browser_is_not_installed_when_POLICY_CHROMIUM_is_there(calls: Path) -> None:
    """With POLICY_CHROMIUM naming an executable, `make browser` installs nothing."""
    browser = calls.parent / "google-chrome"
    _executable(browser, "#!/bin/sh\n")
    result = _make("browser", calls, uid=1001, POLICY_CHROMIUM=str(browser))
    assert result.returncode == 0, result.stderr
    assert _logged(calls) == []


def test_a_user_installs_the_browser_with_sudo(calls: Path) -> None:
    """Not root (GitHub's runner): apt-get runs through sudo; a browser still missing is named."""
    result = _make("browser", calls, uid=1001, POLICY_CHROMIUM="/nonexistent/chromium")
    assert _logged(calls) == [
        "sudo apt-get update -qq",
        "apt-get update -qq",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends chromium",
        "apt-get install -y -qq --no-install-recommends chromium",
    ]
    assert result.returncode != 0
    assert "No browser at /nonexistent/chromium: set POLICY_CHROMIUM" in result.stderr


def test_root_installs_the_browser_without_sudo(calls: Path) -> None:
    """As root (Debian, this project's CI) apt-get runs as it is."""
    _make("browser", calls, uid=0, POLICY_CHROMIUM="/nonexistent/chromium")
    assert _logged(calls) == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends chromium",
    ]


def test_runtimes_that_are_there_are_not_installed(calls: Path) -> None:
    """Java (the HTML checker) and npm (Lighthouse) on PATH: `make runtimes` installs nothing."""
    result = _make("runtimes", calls, uid=0)
    assert result.returncode == 0, result.stderr
    assert _logged(calls) == []


def test_missing_runtimes_come_from_debian(calls: Path) -> None:
    """On a machine without Java or npm, each missing one is installed from Debian."""
    _make("runtimes", calls, uid=0, JAVA="/nonexistent/java")
    assert _logged(calls)[-1] == (
        "apt-get install -y -qq --no-install-recommends default-jre-headless")
    calls.unlink()
    _make("runtimes", calls, uid=1001, NPM="/nonexistent/npm")
    assert _logged(calls)[-1] == "apt-get install -y -qq --no-install-recommends nodejs npm"


@pytest.mark.postgres
def test_services_that_answer_are_not_started(calls: Path) -> None:
    """PostgreSQL and Redis answering on their ports (service containers) are left alone."""
    result = _make("services", calls, uid=1001)
    assert result.returncode == 0, result.stderr
    assert _logged(calls) == []
