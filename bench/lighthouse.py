"""Lighthouse 12.2.3 on every kind of page, in both languages, on phones and desktops.

Writes a project into a temporary folder with three versions (1.0 archived,
1.1 in force, 1.2 upcoming, so every page kind exists: the policy with its
"this policy changes" banner, the version list, an archived version, the
upcoming version, a comparison), builds it and starts `policy-site serve` on a
loopback port. Then Lighthouse (tools/lighthouse, `make lighthouse`) audits,
in the system's Chromium, each page: the policy, the version list, the
archived and upcoming versions, the comparison, the form, the form with its
errors (Lighthouse presses the submit button of the empty form and measures
the page the POST answers), the confirmation, the page behind the e-mail's
link, and a 404.

Prints one row per page, language and form factor: the four scores, the bytes
transferred and the number of requests, and the audits that did not pass (an
audit that errors out in Lighthouse itself, as some trace-based ones do with a
newer Chromium, is listed as such). Performance moves with a busy machine;
the other three categories do not (tests/test_lighthouse.py asserts them).

    .venv/bin/python bench/lighthouse.py [--form-factors mobile,desktop] [--lang lv,en]
                                         [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "lighthouse"
CHROMIUM = os.environ.get("POLICY_CHROMIUM") or "/usr/bin/chromium"
SECRET = "lighthouse-bench-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105 (a bench)
HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
REFERENCE = re.compile(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}")
TODAY = dt.date.today()


class BenchError(Exception):
    """Something the bench needs is missing; the message says what to do."""


def make_project(dest: Path, site_url: str) -> Path:
    """A copy of the project with 1.1 in force since yesterday and 1.2 taking effect in 30 days,
    its public address `site_url` (where it is served: Material's script reads the sitemap
    there, as in production)."""
    from site_config.facts import load_site
    from site_config.new_version import new_version, seal

    shutil.copy2(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(ROOT / "content", dest / "content")
    shutil.copytree(ROOT / "site_config", dest / "site_config",
                    ignore=shutil.ignore_patterns("__pycache__"))
    facts = dest / "site_config" / "site.yml"
    text = facts.read_text(encoding="utf-8")
    if "site_url:" in text:
        text = re.sub(r"(?m)^site_url: .*$", f"site_url: {site_url}", text)
    facts.write_text(text, encoding="utf-8")
    edits = {
        "1.1": {"lv": ("Pasta serveriem.", "Pasta serveriem un kurjeriem.", "Pievienoti kurjeri."),
                "en": ("Mail servers.", "Mail servers and couriers.", "Couriers added."),
                "ru": ("Почтовым серверам.", "Почтовым серверам и курьерам.",
                       "Добавлены курьеры.")},
        "1.2": {"lv": ("kurjeriem.", "kurjeriem un grāmatvedim.", "Pievienots grāmatvedis."),
                "en": ("couriers.", "couriers and the accountant.", "The accountant added."),
                "ru": ("курьерам.", "курьерам и бухгалтеру.", "Добавлен бухгалтер.")},
    }
    days = {"1.1": TODAY - dt.timedelta(days=1), "1.2": TODAY + dt.timedelta(days=30)}
    for version, changes in edits.items():
        load_site.cache_clear()
        site = load_site(dest)
        new_version(site, version, days[version])
        for lang, (old, new, summary) in changes.items():
            if lang not in site.language_codes:
                continue
            index = site.content_dir / lang / "index.md"
            text = index.read_text(encoding="utf-8")
            text = text.replace(old, new, 1).replace(
                'summary: "TODO: one sentence on what changed"', f"summary: {summary}")
            index.write_text(text, encoding="utf-8")
        seal(site, min(days[version], TODAY) - dt.timedelta(days=40))
    load_site.cache_clear()
    return dest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(project: Path, var: Path, port: int) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "POLICY_VAR_DIR": str(var),
           "POLICY_SITE_DIR": str(project / "site"), "POLICY_BASE_URL": base,
           "POLICY_SECRET_KEY": SECRET, "POLICY_RATE_LIMIT_PER_IP": "100000/hour"}
    log = (var / "service.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "form_service.cli", "--project", str(project), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError((var / "service.log").read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def submitted_pages(base: str, prefix: str) -> tuple[str, str]:
    """Send a valid form as a browser does; the confirmation's and the e-mail link's address."""
    import httpx2

    from form_service.tokens import make_token

    with httpx2.Client(base_url=base, headers={"Origin": base}) as client:
        form = client.get(f"{prefix}request/", params={"type": "access"})
        fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
        fields.update(name="Anna Liepa", email="anna@example.lv", request_type="access",
                      details="Lūdzu, atsūtiet manus datus.")
        answer = client.post(f"{prefix}request/", data=fields)
        if answer.status_code != 303:
            raise BenchError(f"the form was not accepted ({answer.status_code})")
        sent = answer.headers["location"]
        found = REFERENCE.search(client.get(sent).text)
        if not found:
            raise BenchError("no reference on the confirmation page")
    return sent, "/request/verify/" + make_token(SECRET, "verify", {"ref": found[0]})


def pages(base: str, langs: list[str]) -> list[dict[str, str]]:
    targets = []
    for lang in langs:
        prefix = "/" if lang == "lv" else f"/{lang}/"
        sent, verify = submitted_pages(base, prefix)
        for name, path, submit in [
            ("policy", prefix, ""),
            ("version list", f"{prefix}versions/", ""),
            ("archived version", f"{prefix}versions/1.0/", ""),
            ("upcoming version", f"{prefix}versions/1.2/", ""),
            ("comparison", f"{prefix}versions/1.2/changes/", ""),
            ("form", f"{prefix}request/?type=access", ""),
            ("form with errors", f"{prefix}request/?type=access", 'button[type="submit"]'),
            ("confirmation", sent, ""),
            ("verification", verify, ""),
            ("404", f"{prefix}no-such-page/", ""),
        ]:
            row = {"name": f"{name} ({lang})", "url": base + path}
            if submit:
                row["submit"] = submit
            targets.append(row)
    return targets


def lighthouse(targets: list[dict[str, str]], form_factors: list[str],
               categories: list[str] | None = None) -> list[dict]:
    """Lighthouse on each page and form factor (tools/lighthouse/audit.mjs): one row each."""
    if not (TOOL / "node_modules" / "lighthouse").is_dir():
        raise BenchError("Lighthouse is not installed: run `make lighthouse`.")
    job: dict = {"chrome": CHROMIUM, "pages": targets, "form_factors": form_factors}
    if categories:
        job["categories"] = categories
    done = subprocess.run(["node", str(TOOL / "audit.mjs")], input=json.dumps(job), text=True,
                          capture_output=True, cwd=TOOL, timeout=3600, check=False)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        raise BenchError(f"Lighthouse failed: {done.stderr[-2000:]}")
    return rows


def audit_site(langs: list[str], form_factors: list[str]) -> list[dict]:
    from site_config.build_site import build_and_compress

    with tempfile.TemporaryDirectory(prefix="lighthouse-") as tmp:
        port = _free_port()
        project = make_project(Path(tmp), f"http://127.0.0.1:{port}/")
        build_and_compress(project, project / "site", TODAY)
        var = Path(tmp) / "var"
        var.mkdir()
        with service(project, var, port) as base:
            return lighthouse(pages(base, langs), form_factors)


def _score(row: dict, category: str) -> str:
    value = (row.get("scores") or {}).get(category)
    return "err" if value is None else str(round(value * 100))


def print_table(rows: list[dict]) -> None:
    categories = ("performance", "accessibility", "best-practices", "seo")
    print(f"{'page':<28} {'form':<8} {'perf':>4} {'a11y':>4} {'bp':>4} {'seo':>4} "
          f"{'KB':>7} {'req':>4}  not passed")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<28} {row['form_factor']:<8} error: {row['error']}")
            continue
        scores = " ".join(f"{_score(row, c):>4}" for c in categories)
        failed = ", ".join(row["failed"])
        print(f"{row['name']:<28} {row['form_factor']:<8} {scores} "
              f"{row['bytes'] / 1024:>7.1f} {row['requests']:>4}  {failed}")
    errored = sorted({e for row in rows for e in row.get("errored", [])})
    if errored:
        print("\nAudits that errored out inside Lighthouse (not scored):")
        for line in errored:
            print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--form-factors", default="mobile,desktop")
    parser.add_argument("--lang", default="lv,en")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    try:
        rows = audit_site(args.lang.split(","), args.form_factors.split(","))
    except BenchError as exc:
        print(f"bench/lighthouse.py: {exc}", file=sys.stderr)
        return 1
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
