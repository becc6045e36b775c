"""deploy/: the systemd units and the rebuild script that the README's deployment uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from site_tree import ROOT as DEFAULT_ROOT

DEPLOY = DEFAULT_ROOT / "deploy"
PREFIX = "/srv/policy-site/app"  # where README, "Deploying", puts the checkout
UNITS = ("policy-site@.service", "policy-site-migrate.service", "policy-site-rebuild.service",
         "policy-site-rebuild.timer")
HARDENING = {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
             "User": "policy-site"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and settings (a setting may repeat, so each is a list)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def check_units() -> None:
    """The directives the deployment relies on (the same checks run with or without systemd)."""
    units = {name: parse_unit(DEPLOY / name) for name in UNITS}
    instance, migrate = units["policy-site@.service"], units["policy-site-migrate.service"]
    rebuild, timer = units["policy-site-rebuild.service"], units["policy-site-rebuild.timer"]
    for name in ("policy-site@.service", "policy-site-migrate.service",
                 "policy-site-rebuild.service"):
        for key, value in HARDENING.items():
            assert one(units[name], "Service", key) == value, (name, key)
    # Instances: only the var folder is writable, and what they write is private.
    assert one(instance, "Service", "ReadWritePaths") == "/srv/policy-site/var"
    assert one(instance, "Service", "UMask") == "0077"
    assert one(instance, "Service", "ExecStart").endswith("serve --host 127.0.0.1 --port %i")
    # Migrations run once, before the instances.
    assert "policy-site-migrate.service" in one(instance, "Unit", "Requires")
    assert "policy-site-migrate.service" in one(instance, "Unit", "After").split()
    assert one(migrate, "Service", "Type") == "oneshot"
    assert one(migrate, "Service", "RemainAfterExit") == "yes"
    assert one(migrate, "Service", "ExecStart").endswith(" migrate")
    # The rebuild: the script, its writable checkout and site folder, and its timer.
    assert one(rebuild, "Service", "ExecStart") == (
        f"{PREFIX}/deploy/rebuild-site /srv/policy-site/content /srv/policy-site/www")
    # It pulls its own checkout: the instances' code (app/) changes only by an upgrade.
    assert set(one(rebuild, "Service", "ReadWritePaths").split()) == {
        "/srv/policy-site/content", "/srv/policy-site/www"}
    assert one(timer, "Timer", "OnCalendar").startswith("*-*-* ")
    assert one(timer, "Timer", "Persistent") == "true"
    for unit in (instance, migrate, rebuild):
        command = one(unit, "Service", "ExecStart").split()[0]
        assert command.startswith(PREFIX + "/")
        assert (DEFAULT_ROOT / command.removeprefix(PREFIX + "/")).parent.name in (".venv", "bin",
                                                                                   "deploy")


def test_units_declare_the_hardening_and_order_the_deployment_needs() -> None:
    """Instances run as policy-site with ProtectSystem=strict, only var/ writable,
    NoNewPrivileges, PrivateTmp and umask 0077, after a oneshot migration; the rebuild
    runs the shipped script daily."""
    check_units()


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts every unit, with the install prefix pointed at this
    checkout so that it can check each command exists. Where systemd-analyze is not
    installed this test says so and falls back to the directive checks above, which then
    are the only check of the units' syntax."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze is not installed: the units were checked by their directives only")
        check_units()
        return
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8").replace(PREFIX, str(DEFAULT_ROOT))
        (tmp_path / name).write_text(text, encoding="utf-8")
    shutil.copy(tmp_path / "policy-site@.service", tmp_path / "policy-site@8001.service")
    # Our folder first, then the system's units (for targets such as network-online.target).
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:", "SYSTEMD_LOG_LEVEL": "notice"}
    names = ["policy-site@8001.service", *UNITS[1:]]
    done = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.slow
def test_rebuild_switches_the_site_atomically_and_keeps_the_newest(tmp_path: Path) -> None:
    """Two rebuilds while a reader keeps opening pages: every read finds a whole site, `site`
    ends on the newest build (compressed, with its headers file), and older builds go; a
    third run with nothing new (same commit, same day) builds nothing."""
    www = tmp_path / "www"
    env = {**os.environ, "POLICY_REBUILD_PULL": "no", "POLICY_KEEP_SITES": "1"}
    script = DEPLOY / "rebuild-site"
    command = [str(script), str(DEFAULT_ROOT), str(www)]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert first.returncode == 0, first.stderr
    missing: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_pages() -> None:
        nonlocal reads
        while not stop.is_set():
            for page in ("index.html", "en/index.html", "versions.json"):
                try:
                    (www / "site" / page).read_bytes()
                except OSError as exc:
                    missing.append(f"{page}: {exc}")
                reads += 1

    reader = threading.Thread(target=read_pages)
    reader.start()
    try:
        # Same commit, same day: built only when forced (as after a change of packages).
        second = subprocess.run(command,
                                env={**env, "POLICY_REBUILD_FORCE": "yes"},
                                capture_output=True, text=True, timeout=300, check=False)
    finally:
        stop.set()
        reader.join()
    assert second.returncode == 0, second.stderr
    assert missing == [] and reads > 100
    builds = sorted(p.name for p in www.glob("site-*") if p.is_dir() and not p.is_symlink())
    assert len(builds) == 1
    assert os.readlink(www / "site") == builds[0]
    assert (www / "site" / "index.html.br").is_file()
    assert (www / "site" / "index.html.gz").is_file()
    assert "Content-Security-Policy" in (www / "site-headers.caddy").read_text()
    assert sorted(p.name for p in www.iterdir()) == sorted(
        [*builds, "site", "site-headers.caddy", ".built-from", ".headers-changed"])
    # Nothing new since: the next run (the timer's, 15 minutes later) builds nothing.
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert third.returncode == 0, third.stderr
    assert third.stdout.startswith(f"The site in {www}/site is up to date (")
    assert sorted(p.name for p in www.glob("site-*") if p.is_dir()) == builds
