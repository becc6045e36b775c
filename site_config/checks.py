"""The editor checks: what `policy-site check` reports, in plain words.

Each problem names the file, the line where it can, what is wrong and how to
fix it, in the editor's language (texts/<lang>.yml, keys check_*).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from site_config.facts import FactsError, Site, load_ui_texts, text_files
from site_config.ledger import LedgerEntry, read_ledger
from site_config.plurals import integer_plural_categories
from site_config.versions import (
    PolicyText,
    VersionError,
    archive_path,
    archived_files,
    read_policy_file,
    version_key,
)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def where(self, site: Site) -> str:
        """The file, relative to the project, and the line when known: content/en/index.md:2."""
        return _relative(site, self.path) + (f":{self.line}" if self.line else "")

    def message(self, site: Site, lang: str) -> str:
        """What is wrong and how to fix it, in the editor's language."""
        return str(load_ui_texts(site.root, lang)[self.key]).format(**self.params)

    def render(self, site: Site, lang: str) -> str:
        return f"{self.where(site)}: {self.message(site, lang)}"


def _relative(site: Site, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(site.root))
    except ValueError:
        return str(path)


def run_checks(site: Site, today: dt.date) -> list[Problem]:
    problems: list[Problem] = []
    problems += _check_texts_catalogue(site)
    problems += _check_pages_in_every_language(site)
    per_lang: dict[str, list[PolicyText]] = {}
    for lang in site.language_codes:
        texts, errors = _read_language(site, lang)
        per_lang[lang] = texts
        problems += errors
    if any(p.key.startswith("check_bad") or p.key == "check_no_front_matter" for p in problems):
        return problems  # the version checks below need readable headers
    ledger = read_ledger(site.root)
    problems += _check_languages_agree(site, per_lang)
    problems += _check_unfinished(site, per_lang)
    for lang, texts in per_lang.items():
        problems += _check_against_ledger(site, lang, texts, ledger)
        problems += _check_sequence(site, texts, ledger, today)
    return problems


def _read_language(site: Site, lang: str) -> tuple[list[PolicyText], list[Problem]]:
    texts: list[PolicyText] = []
    problems: list[Problem] = []
    paths = [(p, False) for p in archived_files(site.content_dir, lang)]
    index = site.content_dir / lang / "index.md"
    if index.is_file():
        paths.append((index, True))
    else:
        problems.append(
            Problem(index, None, "check_missing_working_copy", {"expected": index.name})
        )
    for path, working in paths:
        try:
            text = read_policy_file(path, lang, is_working_copy=working)
        except VersionError as exc:
            problems.append(Problem(exc.path, exc.line, exc.key, exc.params))
            continue
        if not working and text.id != path.stem:
            problems.append(
                Problem(path, 2, "check_archive_id_mismatch",
                        {"file_name": path.name, "version": text.id})
            )
            continue
        if working and any(t.id == text.id for t in texts):
            archived = archive_path(site.content_dir, lang, text.id)
            problems.append(
                Problem(path, 2, "check_duplicate_version",
                        {"version": text.id, "archived": _relative(site, archived)})
            )
            continue
        texts.append(text)
    return sorted(texts, key=lambda t: t.key), problems


def _check_texts_catalogue(site: Site) -> list[Problem]:
    """Every text in every language: a key any language has is missing in none, a plural
    text has each form its language needs, and the rights and the authority are named.

    The reference is every language's keys together, not only the binding language's, so
    that a text added in one language alone is named in the others too.
    """
    files = {lang: text_files(site.root, lang) for lang in site.language_codes}
    texts = {lang: _texts_or_empty(site, lang) for lang in site.language_codes}
    reference: dict[str, Path] = {}
    for lang in site.language_codes:
        for key, path in files[lang].items():
            reference.setdefault(key, path)
    problems = []
    for lang in site.language_codes:
        for key, ref_path in reference.items():
            expected = _same_area(ref_path, lang)
            params = {"lang": lang, "expected": expected.name, "default": ref_path.name}
            if key not in files[lang]:
                problems.append(Problem(expected, None, "check_text_missing",
                                        {"key": key, **params}))
                continue
            problems += _check_table(site, texts, lang, key, files[lang][key], params)
    for right in site.rights:
        for lang in site.language_codes:
            if not right.label.get(lang) or not right.hint.get(lang):
                problems.append(Problem(site.config_dir / "rights.yml", None,
                                        "check_right_label_missing",
                                        {"right": right.id, "lang": lang}))
    names = site.authority.get("name")
    for lang in site.language_codes:
        if not isinstance(names, dict) or not names.get(lang):
            problems.append(Problem(site.config_dir / "site.yml", None,
                                    "check_authority_name_missing", {"lang": lang}))
    return problems


def _texts_or_empty(site: Site, lang: str) -> dict[str, Any]:
    try:
        # Read afresh, not from the cache: the editor has just changed these files.
        return load_ui_texts.__wrapped__(site.root, lang)  # type: ignore[attr-defined,no-any-return]
    except FactsError:
        return {}  # no file at all in this language: each text is named as missing


_CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})


def _is_plural(value: dict[str, Any]) -> bool:
    """{one: ..., other: ...}: a text in a form per CLDR plural category."""
    return bool(value) and set(value) <= _CATEGORIES


def _same_area(path: Path, lang: str) -> Path:
    """site_config/texts/form.lv.yml -> site_config/texts/form.<lang>.yml."""
    area = path.name.split(".", 1)[0]
    return path.with_name(f"{area}.{lang}.yml")


def _check_table(site: Site, texts: dict[str, dict[str, Any]], lang: str, key: str,
                 path: Path, params: dict[str, Any]) -> list[Problem]:
    """A table of texts (form_wtforms): each entry of any language is here, and an entry
    with forms per number has every form this language's numbers take (CLDR)."""
    mine = texts[lang].get(key)
    if not isinstance(mine, dict):
        return []
    needed = integer_plural_categories(lang)
    if _is_plural(mine):
        # A text with a number in it ({n} days late): one form per category of this language.
        missing = needed - set(mine)
        if not missing:
            return []
        return [Problem(path, None, "check_plural_missing",
                        {**params, "key": key, "categories": ", ".join(sorted(missing)),
                         "needed": ", ".join(sorted(needed))})]
    entries: dict[str, Any] = {}
    for other in site.language_codes:
        table = texts[other].get(key)
        if isinstance(table, dict):
            for entry, value in table.items():
                entries.setdefault(entry, value)
    problems = []
    for entry, sample in entries.items():
        label = f"{key}: {entry}"
        if entry not in mine:
            problems.append(Problem(path, None, "check_text_missing", {**params, "key": label}))
            continue
        value = mine[entry]
        plural = isinstance(value, dict) or isinstance(sample, dict)
        have = set(value) if isinstance(value, dict) else set()
        if plural and not needed <= have:
            problems.append(Problem(path, None, "check_plural_missing",
                                    {**params, "key": label,
                                     "categories": ", ".join(sorted(needed - have)),
                                     "needed": ", ".join(sorted(needed))}))
    return problems


def _pages(site: Site, lang: str) -> set[str]:
    folder = site.content_dir / lang
    if not folder.is_dir():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.md")}


def _check_pages_in_every_language(site: Site) -> list[Problem]:
    pages = {lang: _pages(site, lang) for lang in site.language_codes}
    problems = []
    for has, its_pages in pages.items():
        for lacks, other_pages in pages.items():
            for page in sorted(its_pages - other_pages):
                if page == "index.md":
                    continue  # reported by _read_language as a missing policy text
                expected = site.content_dir / lacks / page
                problems.append(
                    Problem(site.content_dir / has / page, None, "check_missing_page",
                            {"page": page, "has": has, "lacks": lacks,
                             "expected": _relative(site, expected)})
                )
    return problems


def _check_languages_agree(site: Site, per_lang: dict[str, list[PolicyText]]) -> list[Problem]:
    default = site.default_language
    reference = {t.id: t for t in per_lang[default]}
    ref_working = next((t for t in per_lang[default] if t.is_working_copy), None)
    problems = []
    for lang, texts in per_lang.items():
        if lang == default:
            continue
        working = next((t for t in texts if t.is_working_copy), None)
        if working and ref_working and working.id != ref_working.id:
            problems.append(
                Problem(working.path, 2, "check_version_differs",
                        {"this": working.id, "other": ref_working.id,
                         "other_file": _relative(site, ref_working.path)})
            )
            continue
        for text in texts:
            other = reference.get(text.id)
            if other and other.effective != text.effective:
                problems.append(
                    Problem(text.path, 3, "check_effective_differs",
                            {"version": text.id, "this": text.effective.isoformat(),
                             "other": other.effective.isoformat(),
                             "other_file": _relative(site, other.path)})
                )
    return problems


_TODO = re.compile(r"\bTODO\b")


def _check_unfinished(site: Site, per_lang: dict[str, list[PolicyText]]) -> list[Problem]:
    """What a new project (`policy-site init`) leaves to the shop: TODOs in site.yml, and a
    working text still marked `draft: true` or holding a TODO."""
    problems = []
    facts = site.config_dir / "site.yml"
    for number, line in enumerate(facts.read_text("utf-8").splitlines(), start=1):
        if _TODO.search(line) and not line.lstrip().startswith("#"):
            problems.append(Problem(facts, number, "check_site_todo", {"text": line.strip()}))
    for texts in per_lang.values():
        working = next((t for t in texts if t.is_working_copy), None)
        if working is None:
            continue
        lines = working.path.read_text("utf-8").splitlines()
        if working.meta.get("draft"):
            number = next((n for n, line in enumerate(lines, start=1)
                           if line.startswith("draft:")), 1)
            problems.append(Problem(working.path, number, "check_draft", {"version": working.id}))
        header_end = len(lines) - len(working.body.splitlines())
        for number, line in enumerate(lines[header_end:], start=header_end + 1):
            if _TODO.search(line):
                problems.append(Problem(working.path, number, "check_policy_todo",
                                        {"text": line.strip()}))
    return problems


def _next_id(version_id: str) -> str:
    major, minor = version_id.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def _check_against_ledger(
    site: Site, lang: str, texts: list[PolicyText], ledger: dict[str, LedgerEntry]
) -> list[Problem]:
    problems = []
    present = {t.id for t in texts}
    for entry in ledger.values():
        if entry.id not in present and lang in entry.sha256:
            expected = archive_path(site.content_dir, lang, entry.id)
            problems.append(
                Problem(expected, None, "check_missing_in_language",
                        {"version": entry.id, "lang": lang,
                         "expected": _relative(site, expected)})
            )
    for text in texts:
        entry = ledger.get(text.id)
        if entry is None or entry.sha256.get(lang) in (None, text.sha256):
            continue
        if text.is_working_copy:
            problems.append(Problem(text.path, 2, "check_current_changed",
                                    {"version": text.id, "suggest": _next_id(text.id)}))
        else:
            problems.append(Problem(text.path, None, "check_released_changed",
                                    {"version": text.id}))
    return problems


def _check_sequence(
    site: Site, texts: list[PolicyText], ledger: dict[str, LedgerEntry], today: dt.date
) -> list[Problem]:
    problems = []
    previous: PolicyText | None = None
    for text in texts:
        if not text.summary or text.summary.upper().startswith("TODO"):
            problems.append(Problem(text.path, 4, "check_summary_missing", {"version": text.id}))
        if previous and text.effective <= previous.effective:
            problems.append(
                Problem(text.path, 3, "check_effective_backwards",
                        {"version": text.id, "this": text.effective.isoformat(),
                         "previous": previous.id,
                         "previous_date": previous.effective.isoformat()})
            )
        entry = ledger.get(text.id)
        if text.material:
            since = dt.date.fromisoformat(entry.sealed_on) if entry else today
            earliest = since + dt.timedelta(days=site.material_change_notice_days)
            if text.effective < earliest:
                problems.append(
                    Problem(text.path, 3, "check_material_notice",
                            {"version": text.id, "days": site.material_change_notice_days,
                             "since": since.isoformat(), "earliest": earliest.isoformat()})
                )
        if entry is None and text.lang == site.default_language:
            problems.append(Problem(text.path, 2, "check_not_sealed", {"version": text.id}))
        elif entry is not None and text.lang not in entry.sha256:
            # A translation added to a sealed version (a new language): its text is
            # frozen only once seal records it too.
            problems.append(Problem(text.path, 2, "check_translation_not_sealed",
                                    {"version": text.id, "lang": text.lang}))
        previous = text
    return problems


def sort_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (str(p.path), p.line or 0, p.key))


__all__ = ["Problem", "run_checks", "sort_problems", "version_key"]
