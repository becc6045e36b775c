"""`policy-site init DIR`: a new, working policy project for another shop.

The project holds only the shop's data: mkdocs.yml (naming the generator's
MkDocs plugin, not a hooks file), site_config/ (facts with TODOs where only the
shop knows the answer, the rights catalogue and the texts copied from the
package's defaults, the Art. 13 map), content/<lang>/ with a starter policy
marked as a draft, the GitHub workflow and pull-request template, and an
editor's README. The code stays in the installed package.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from babel import Locale, UnknownLocaleError

PACKAGE = Path(__file__).resolve().parent
STARTER = PACKAGE / "starter"
DEFAULT_TEXTS = PACKAGE / "texts"
DEFAULT_RIGHTS = PACKAGE / "rights.yml"
# The language whose starter stands in for one the package has no starter for.
FALLBACK = "en"


class InitError(Exception):
    """Raised when the project cannot be written; one sentence saying why."""


@dataclass(frozen=True)
class _Language:
    code: str
    name: str
    starter: str  # the starter folder used (its own, or the fallback's)
    strings: dict[str, Any]

    @property
    def site_name(self) -> str:
        return str(self.strings["site_name"])


def _language(code: str, controller: str) -> _Language:
    starter = code if (STARTER / code / "language.yml").is_file() else FALLBACK
    strings = yaml.safe_load((STARTER / starter / "language.yml").read_text("utf-8"))
    name = strings["name"] if starter == code else _display_name(code)
    strings = {**strings,
               "site_name": strings["site_name"].format(controller=controller),
               "site_description": strings["site_description"].format(controller=controller)}
    return _Language(code, name, starter, strings)


def _display_name(code: str) -> str:
    """A language's own name for itself, capitalised (babel's CLDR data): Deutsch, Eesti."""
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        raise InitError(f"{code!r} is not a language code (like lv, en, ru).") from None
    return name[:1].upper() + name[1:]


def _requirement() -> str:
    """How the shop's CI installs this generator: this very version."""
    dist = importlib.metadata.distribution("pulkstenu-policy")
    return f"{dist.metadata['Name']}=={dist.version}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(STARTER),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 -- Markdown and YAML, not HTML
    )
    # A YAML string as the editors would write it: quoted, letters as they are.
    env.filters["yaml_str"] = lambda value: json.dumps(str(value), ensure_ascii=False)
    return env


def _check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InitError(f"{target} already exists and is not an empty folder: "
                        "init writes a new project and never overwrites files.")


def init_project(target: Path, controller: str, codes: list[str],
                 today: dt.date | None = None) -> list[Path]:
    """Write the project into `target` (new or empty); return the files written."""
    controller = controller.strip()
    if not controller:
        raise InitError("--controller needs the shop's legal name, e.g. \"Name SIA\".")
    if not codes or len(set(codes)) != len(codes):
        raise InitError("--languages needs distinct language codes, the binding one first, "
                        "e.g. lv,en.")
    _check_target(target)
    languages = [_language(code, controller) for code in codes]
    default = languages[0]
    env = _env()
    authority = yaml.safe_load(env.get_template("site.yml").render(
        controller=controller, default=default.code,
        languages=[_Authority(lang) for lang in languages]))["supervisory_authority"]
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    common = {"controller": controller, "default": default.code}
    write("mkdocs.yml", env.get_template("mkdocs.yml").render(
        **common, site_name=default.site_name,
        site_description=default.strings["site_description"],
        languages=[_Mkdocs(lang) for lang in languages]))
    write("site_config/site.yml", env.get_template("site.yml").render(
        **common, languages=[_Authority(lang) for lang in languages]))
    write("site_config/rights.yml", _rights(codes))
    for source in sorted(DEFAULT_TEXTS.glob("*.yml")):
        lang = source.name.split(".")[1]
        if lang in codes:
            write(f"site_config/texts/{source.name}", source.read_text("utf-8"))
    write("site_config/gdpr13.yml", _gdpr13_map(default))
    effective = (today or dt.date.today()).isoformat()
    for lang in languages:
        prefix = "/" if lang is default else f"/{lang.code}/"
        values = {
            **common,
            "h": lang.strings["headings"],
            "effective": effective,
            "form_url": f"{prefix}request/",
            "history_url": f"{prefix}versions/",
            "authority_name": authority["name"][lang.code],
            "authority_address": authority["address"],
            "authority_email": authority["email"],
            "authority_website": authority["website"],
            "binding_name": default.name if lang is not default else "",
        }
        write(f"content/{lang.code}/index.md",
              env.get_template(f"{lang.starter}/policy.md").render(**values))
        write(f"content/{lang.code}/versions/index.md",
              env.get_template(f"{lang.starter}/versions.md").render(**values))
    write("README.md", env.get_template("README.md").render(
        **common, binding_name=default.name,
        language_list=", ".join(lang.name for lang in languages)))
    write("requirements.txt", env.get_template("requirements.txt").render(
        requirement=_requirement()))
    write(".gitignore", (STARTER / "gitignore").read_text("utf-8"))
    for rel in ("workflows/policy.yml", "pull_request_template.md"):
        path = target / ".github" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STARTER / "github" / rel, path)
        written.append(path)
    return written


class _Mkdocs:
    def __init__(self, lang: _Language) -> None:
        self.code, self.name = lang.code, lang.name
        self.site_name = lang.site_name
        self.site_description = lang.strings["site_description"]


class _Authority:
    def __init__(self, lang: _Language) -> None:
        self.code = lang.code
        self.authority_name = lang.strings["authority_name"]


def _rights(codes: list[str]) -> str:
    """The default rights catalogue with the labels of the project's languages only; a
    language the defaults lack is left for `policy-site check` to name."""
    header = "".join(line for line in DEFAULT_RIGHTS.read_text("utf-8").splitlines(True)
                     if line.startswith("#"))
    rights = yaml.safe_load(DEFAULT_RIGHTS.read_text("utf-8"))
    for right in rights:
        for key in ("label", "hint"):
            right[key] = {code: right[key][code] for code in codes if code in right[key]}
    return header + yaml.safe_dump(rights, allow_unicode=True, sort_keys=False, width=100)


def _gdpr13_map(default: _Language) -> str:
    """site_config/gdpr13.yml for the starter policy: each Art. 13 item under its heading."""
    from site_config.gdpr13 import ITEMS

    headings = default.strings["headings"]
    rights = {"access", "rectification", "erasure", "restriction", "objection", "portability",
              "withdraw_consent"}
    lines = [
        "# Where the policy answers each item GDPR Art. 13 requires, for `policy-site audit`:",
        "# the heading of the binding text under which the answer is. Written by",
        "# `policy-site init` for the starter text; keep it in step with the text. An item",
        "# that does not apply is marked with the reason instead, e.g.",
        "#   dpo:",
        "#     not_applicable:",
        "#       lv: Mums nav jāieceļ datu aizsardzības speciālists (VDAR 37. pants).",
        "#       en: We need not appoint a data protection officer (GDPR Art. 37).",
    ]
    for item in ITEMS:
        heading = headings["rights" if item.id in rights else item.id]
        lines.append(f"{item.id}: {json.dumps(heading, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
