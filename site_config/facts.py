"""Load the shop's facts (site.yml), the rights catalogue and the UI texts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml


class FactsError(Exception):
    """Raised when a file under site_config/ is missing or malformed; names the file."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str


@dataclass(frozen=True)
class Right:
    id: str
    article: str
    label: dict[str, str]
    hint: dict[str, str]
    needs_details: bool = True


@dataclass(frozen=True)
class Site:
    root: Path
    controller_name: str
    controller_email: str
    languages: tuple[Language, ...]
    form_base_url: str
    staff_language: str
    material_change_notice_days: int
    authority: dict[str, Any]
    rights: tuple[Right, ...]

    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def config_dir(self) -> Path:
        return self.root / "site_config"

    @property
    def language_codes(self) -> tuple[str, ...]:
        return tuple(lang.code for lang in self.languages)

    @property
    def default_language(self) -> str:
        return self.languages[0].code

    def prefix(self, lang: str) -> str:
        """URL path prefix of a language: "/" for the binding language, "/en/" for others."""
        return "/" if lang == self.default_language else f"/{lang}/"

    def right(self, right_id: str) -> Right | None:
        return next((r for r in self.rights if r.id == right_id), None)

    def form_url(self, lang: str, right_id: str | None = None, version: str | None = None) -> str:
        base = self.form_base_url.rstrip("/")
        url = f"{base}{self.prefix(lang)}request/"
        query = [f"type={right_id}"] if right_id else []
        if version:
            query.append(f"v={version}")
        return url + ("?" + "&".join(query) if query else "")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FactsError(f"{path} is missing.") from None
    except yaml.YAMLError as exc:
        raise FactsError(f"{path} is not valid YAML: {exc}") from None


def _languages(root: Path) -> tuple[Language, ...]:
    """The languages from mkdocs.yml's i18n plugin, the default (binding) one first."""
    path = root / "mkdocs.yml"
    raw = _read_yaml(path)
    for plugin in raw.get("plugins", []):
        if isinstance(plugin, dict) and "i18n" in plugin:
            entries = plugin["i18n"]["languages"]
            built = [e for e in entries if e.get("build", True)]
            ordered = [e for e in built if e.get("default")] + [
                e for e in built if not e.get("default")
            ]
            return tuple(Language(e["locale"], e["name"]) for e in ordered)
    raise FactsError(f"{path} has no i18n plugin with languages.")


@cache
def load_site(root: Path) -> Site:
    """The facts of the project at `root` (see site_config.project for finding it)."""
    root = Path(root).resolve()
    path = root / "site_config" / "site.yml"
    raw = _read_yaml(path)
    languages = _languages(root)
    rights_raw = _read_yaml(root / "site_config" / "rights.yml")
    try:
        return Site(
            root=root,
            controller_name=raw["controller"]["name"],
            controller_email=raw["controller"]["email"],
            languages=languages,
            form_base_url=str(raw.get("form_base_url") or "/"),
            staff_language=raw.get("staff_language", languages[0].code),
            material_change_notice_days=int(raw.get("material_change_notice_days", 30)),
            authority=raw["supervisory_authority"],
            rights=tuple(
                Right(r["id"], r["article"], dict(r["label"]), dict(r["hint"]),
                      bool(r.get("needs_details", True)))
                for r in rights_raw
            ),
        )
    except (KeyError, TypeError) as exc:
        raise FactsError(f"{path} or rights.yml lacks the setting {exc}.") from None


@cache
def load_ui_texts(root: Path, lang: str) -> dict[str, Any]:
    """Every text of one language: site_config/texts/<area>.<lang>.yml, merged.

    Areas (site, form, email, ...) keep their keys apart by prefix; the editor
    check compares each language's keys with the default language's.
    """
    folder = Path(root) / "site_config" / "texts"
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob(f"*.{lang}.yml")):
        texts = _read_yaml(path)
        if not isinstance(texts, dict):
            raise FactsError(f"{path} must map text names to texts.")
        merged.update(texts)
    if not merged:
        raise FactsError(f"{folder} has no texts for the language {lang!r} (*.{lang}.yml).")
    return merged


def text_files(root: Path, lang: str) -> dict[str, Path]:
    """Which file each text of a language comes from (for the editor check's messages)."""
    folder = Path(root) / "site_config" / "texts"
    where: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*.{lang}.yml")):
        for key in _read_yaml(path) or {}:
            where[key] = path
    return where


def format_date(texts: dict[str, Any], day: dt.date) -> str:
    return str(texts["date_format"]).format(
        day=day.day,
        month=day.month,
        month_name=texts["months"][day.month - 1],
        year=day.year,
    )
