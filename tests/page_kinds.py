"""Every kind of page a reader meets, in both languages, served as in production.

A copy of the project with three versions (1.0 archived, 1.1 in force, 1.2
upcoming: so the banner, an archived and an upcoming version and a comparison
all exist), built, and served with the form by the real app under uvicorn. A
valid request is sent in each language, so the confirmation and the e-mail
link's page exist too. Used by the validity, layout and Lighthouse tests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from site_tree import copy_project, edit, release, site_of
from web_support import SECRET, TODAY_ISO, free_port, served

from form_service.settings import load_settings
from form_service.tokens import make_token
from site_config.build_site import build_and_compress

# The binding language and English (the project's third, Russian, is built and checked
# for validity with the rest, but these browser audits take their time).
PREFIXES = {"lv": "/", "en": "/en/"}
KINDS = ("policy", "version list", "archived version", "upcoming version", "comparison",
         "form", "form with errors", "confirmation", "verification", "404")
# The form with errors is what the form's POST answers: a browser gets there by pressing
# the button of the empty form.
SUBMIT = 'button[type="submit"]'
_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
_REFERENCE = re.compile(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}")


@dataclass
class Served:
    base: str
    site_dir: Path
    paths: dict[tuple[str, str], str]  # (kind, lang) -> path; "form with errors": the form's

    def url(self, kind: str, lang: str) -> str:
        return self.base + self.paths[kind, lang]


def make_three_versions(root: Path, site_url: str | None = None) -> Path:
    """The project with three versions, built; `site_url`: the address it is served at
    (Material's script reads the site's sitemap there, as it does in production)."""
    root.mkdir(parents=True)
    copy_project(root)
    if site_url:
        edit(root / "site_config" / "site.yml",
             "site_url: https://privatums.pulkstenu-outlets.lv/", f"site_url: {site_url}")
    release(root, "1.1", dt.date(2026, 11, 27), {
        "lv": ("Pasta serveriem.", "Pasta serveriem un kurjeriem.", "Pievienoti kurjeri."),
        "en": ("Mail servers.", "Mail servers and couriers.", "Couriers added."),
        "ru": ("Почтовым серверам.", "Почтовым серверам и курьерам.", "Добавлены курьеры."),
    }, sealed_on=dt.date(2026, 11, 20))
    release(root, "1.2", dt.date(2026, 12, 31), {
        "lv": ("kurjeriem.", "kurjeriem un grāmatvedim.", "Pievienots grāmatvedis."),
        "en": ("couriers.", "couriers and the accountant.", "The accountant added."),
        "ru": ("курьерам.", "курьерам и бухгалтеру.", "Добавлен бухгалтер."),
    }, sealed_on=dt.date(2026, 11, 27))
    site_of(root)  # the facts read afresh: not those of another project in this process
    build_and_compress(root, root / "site", dt.date.fromisoformat(TODAY_ISO))
    return root


def _submitted(client: httpx2.Client, prefix: str, lang: str) -> tuple[str, str]:
    form = client.get(f"{prefix}request/", params={"type": "access"})
    fields = {m["name"]: m["value"] for m in _HIDDEN.finditer(form.text)}
    fields.update(name="Anna Liepa", email=f"anna.{lang}@example.lv", request_type="access",
                  details="Lūdzu, atsūtiet manus datus.")
    answer = client.post(f"{prefix}request/", data=fields)
    assert answer.status_code == 303, answer.text[:300]
    sent = answer.headers["location"]
    reference = _REFERENCE.search(client.get(sent).text)
    assert reference, "no reference on the confirmation page"
    return sent, "/request/verify/" + make_token(SECRET, "verify", {"ref": reference[0]})


@contextmanager
def every_page_kind(tmp: Path) -> Iterator[Served]:
    port = free_port()
    root = make_three_versions(tmp / "project", f"http://127.0.0.1:{port}/")
    settings = load_settings({
        "POLICY_VAR_DIR": str(tmp / "var"),
        "POLICY_SECRET_KEY": SECRET,
        "POLICY_SITE_DIR": str(root / "site"),
        "POLICY_DATABASE_URL": f"sqlite:///{tmp / 'requests.sqlite3'}",
    }, root=root)
    with served(settings, port=port) as base, \
            httpx2.Client(base_url=base, headers={"Origin": base}) as c:
        paths: dict[tuple[str, str], str] = {}
        for lang, prefix in PREFIXES.items():
            sent, verify = _submitted(c, prefix, lang)
            paths.update({
                ("policy", lang): prefix,
                ("version list", lang): f"{prefix}versions/",
                ("archived version", lang): f"{prefix}versions/1.0/",
                ("upcoming version", lang): f"{prefix}versions/1.2/",
                ("comparison", lang): f"{prefix}versions/1.2/changes/",
                ("form", lang): f"{prefix}request/?type=access",
                ("form with errors", lang): f"{prefix}request/?type=access",
                ("confirmation", lang): sent,
                ("verification", lang): verify,
                ("404", lang): f"{prefix}no-such-page/",
            })
        yield Served(base, root / "site", paths)


def page_html(served_site: Served, client: httpx2.Client, kind: str, lang: str) -> str:
    """The page's HTML as the browser receives it (the form with errors: the POST's answer)."""
    url = served_site.url(kind, lang)
    if kind != "form with errors":
        return client.get(url).text
    form = client.get(url)
    fields = {m["name"]: m["value"] for m in _HIDDEN.finditer(form.text)}
    answer = client.post(url.split("?")[0], data=fields)
    assert answer.status_code == 200 and "form-error-summary" in answer.text
    return answer.text
