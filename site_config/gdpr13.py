"""`policy-site audit`: does the policy tell the customer all GDPR Art. 13 asks for?

Art. 13(1) and (2) list what a controller must tell a person whose data it
collects. Whether the text answers an item is the editors' judgement, not a
program's: they name, in site_config/gdpr13.yml, the heading of the binding
text under which the newest version answers each item, or mark the item not
applicable with their reason. The audit reads that map against the text and
reports each item as answered (with its link), missing (with the article and
one sentence on what to add), not applicable (with the reason), or mapped to a
heading the text no longer has.

The report never fails the editors' check (the binding text is theirs to
decide); `--strict` makes any missing item an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markdown
import yaml

from site_config.facts import FactsError, Site, load_ui_texts
from site_config.versions import PolicyText, load_versions


@dataclass(frozen=True)
class Item:
    """One thing Art. 13 requires the policy to state: its id in gdpr13.yml and its place
    in the Article (paragraph and point)."""

    id: str
    paragraph: int
    point: str


# GDPR Art. 13, in the order of the Article. Point (2)(b) lists six rights; each is an
# item of its own, so that the report says which of them the text leaves out.
ITEMS: tuple[Item, ...] = (
    Item("controller", 1, "a"),
    Item("dpo", 1, "b"),
    Item("purposes_legal_basis", 1, "c"),
    Item("legitimate_interests", 1, "d"),
    Item("recipients", 1, "e"),
    Item("transfers", 1, "f"),
    Item("retention", 2, "a"),
    Item("access", 2, "b"),
    Item("rectification", 2, "b"),
    Item("erasure", 2, "b"),
    Item("restriction", 2, "b"),
    Item("objection", 2, "b"),
    Item("portability", 2, "b"),
    Item("withdraw_consent", 2, "c"),
    Item("complaint", 2, "d"),
    Item("statutory_contractual", 2, "e"),
    Item("automated_decisions", 2, "f"),
)

ANSWERED, MISSING, NOT_APPLICABLE, HEADING_NOT_FOUND = (
    "answered", "missing", "not_applicable", "heading_not_found")


@dataclass(frozen=True)
class Heading:
    title: str
    anchor: str
    line: int | None


@dataclass(frozen=True)
class Finding:
    item: Item
    status: str
    heading: Heading | None = None  # in the report's language, when answered
    mapped: str | None = None  # the heading gdpr13.yml names
    reason: str | None = None  # why not applicable, in the report's language


@dataclass(frozen=True)
class Audit:
    version: str
    path: Path  # the binding text audited
    url: str  # the archived page of that version, in the report's language
    findings: tuple[Finding, ...]

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    @property
    def incomplete(self) -> bool:
        """What --strict fails on: an item missing, or mapped to a heading that is gone."""
        return any(f.status in (MISSING, HEADING_NOT_FOUND) for f in self.findings)


def map_path(site: Site) -> Path:
    return site.config_dir / "gdpr13.yml"


def _read_map(site: Site) -> dict[str, Any]:
    path = map_path(site)
    if not path.is_file():
        return {}  # nothing mapped yet: every item is missing
    try:
        raw = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise FactsError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise FactsError(f"{path} must map each Art. 13 item to a heading.")
    known = {item.id for item in ITEMS}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FactsError(
            f"{path} names {', '.join(unknown)}, which is not an Art. 13 item; the items are "
            f"{', '.join(item.id for item in ITEMS)}."
        )
    return raw


def _markdown_options(site: Site) -> tuple[list[str], dict[str, Any]]:
    """mkdocs.yml's Markdown extensions, so that heading anchors are the built site's."""
    raw = yaml.safe_load((site.root / "mkdocs.yml").read_text("utf-8")) or {}
    names: list[str] = []
    configs: dict[str, Any] = {}
    for entry in raw.get("markdown_extensions") or []:
        if isinstance(entry, dict):
            for name, options in entry.items():
                names.append(name)
                configs[name] = options or {}
        else:
            names.append(str(entry))
    if "toc" not in names:
        names.append("toc")  # MkDocs always adds it
    return names, configs


_ATX = re.compile(r"^#{1,6}\s+\S")


def headings_of(site: Site, text: PolicyText) -> list[Heading]:
    """Every heading of a policy text in order, with the anchor the site gives it and its
    line in the file."""
    names, configs = _markdown_options(site)
    md = markdown.Markdown(extensions=names, extension_configs=configs)
    md.convert(text.body)
    flat: list[dict[str, Any]] = []

    def walk(tokens: list[dict[str, Any]]) -> None:
        for token in tokens:
            flat.append(token)
            walk(token.get("children", []))

    walk(md.toc_tokens)  # type: ignore[attr-defined]
    file_lines = text.path.read_text("utf-8").splitlines()
    body_start = len(file_lines) - len(text.body.splitlines())
    lines = [n for n, line in enumerate(file_lines, start=1)
             if n > body_start and _ATX.match(line)]
    if len(lines) != len(flat):
        lines = [None] * len(flat)  # type: ignore[list-item]
    return [Heading(t["name"], t["id"], line) for t, line in zip(flat, lines, strict=True)]


def _norm(title: str) -> str:
    return " ".join(title.split()).casefold()


def _reason(value: Any, lang: str, default: str) -> str:
    if isinstance(value, dict):
        return str(value.get(lang) or value.get(default) or "")
    return str(value or "")


def run_audit(site: Site, lang: str) -> Audit:
    """Audit the newest version of the binding text; report in `lang`."""
    default = site.default_language
    binding = load_versions(site.content_dir, default)[-1]
    translated = next((t for t in load_versions(site.content_dir, lang) if t.id == binding.id),
                      None) if lang != default else binding
    binding_headings = headings_of(site, binding)
    shown = binding_headings
    if translated is not None and translated is not binding:
        # A translation has the binding text's headings in the same order; link to its own
        # when it has as many, else to the binding text's.
        own = headings_of(site, translated)
        if len(own) == len(binding_headings):
            shown = own
    mapping = _read_map(site)
    findings = []
    for item in ITEMS:
        entry = mapping.get(item.id)
        if isinstance(entry, dict) and "not_applicable" in entry:
            findings.append(Finding(item, NOT_APPLICABLE,
                                    reason=_reason(entry["not_applicable"], lang, default)))
            continue
        wanted = entry.get("heading") if isinstance(entry, dict) else entry
        if not wanted:
            findings.append(Finding(item, MISSING))
            continue
        index = next((i for i, h in enumerate(binding_headings)
                      if _norm(h.title) == _norm(str(wanted))), None)
        if index is None:
            findings.append(Finding(item, HEADING_NOT_FOUND, mapped=str(wanted)))
        else:
            findings.append(Finding(item, ANSWERED, heading=shown[index], mapped=str(wanted)))
    shown_path = translated.path if shown is not binding_headings and translated else binding.path
    url = f"{site.prefix(lang if shown is not binding_headings else default)}versions/{binding.id}/"
    return Audit(binding.id, shown_path, url, tuple(findings))


# --- the report -------------------------------------------------------------------------


def _relative(site: Site, path: Path) -> str:
    try:
        return path.resolve().relative_to(site.root).as_posix()
    except ValueError:
        return str(path)


def _article(ui: dict[str, Any], item: Item) -> str:
    return str(ui["audit_article"]).format(paragraph=item.paragraph, point=item.point)


def _where(site: Site, audit: Audit, heading: Heading) -> tuple[str, str]:
    link = f"{audit.url}#{heading.anchor}"
    file = _relative(site, audit.path) + (f":{heading.line}" if heading.line else "")
    return link, file


def _explain(site: Site, lang: str, ui: dict[str, Any], audit: Audit,
             finding: Finding) -> str:
    if finding.status == ANSWERED and finding.heading:
        link, file = _where(site, audit, finding.heading)
        return str(ui["audit_answered_at"]).format(heading=finding.heading.title, link=link,
                                                   file=file)
    if finding.status == NOT_APPLICABLE:
        return str(ui["audit_reason"]).format(reason=finding.reason or "")
    names = site.authority.get("name") or {}
    add = str(ui[f"audit_add_{finding.item.id}"]).format(
        authority_name=names.get(lang) or names.get(site.default_language, ""),
        authority_address=site.authority.get("address", ""),
        authority_website=site.authority.get("website", ""),
    )
    if finding.status == HEADING_NOT_FOUND:
        return str(ui["audit_heading_not_found"]).format(heading=finding.mapped) + " " + add
    return add


def render_text(site: Site, lang: str, audit: Audit) -> str:
    """The report for a terminal: one line per item, then the counts."""
    ui = load_ui_texts(site.root, lang)
    lines = [str(ui["audit_title"]).format(version=audit.version,
                                          file=_relative(site, audit.path)), ""]
    for finding in audit.findings:
        status = ui[f"audit_status_{finding.status}"]
        title = ui[f"audit_item_{finding.item.id}"]
        lines.append(f"[{status}] {_article(ui, finding.item)} — {title}: "
                     f"{_explain(site, lang, ui, audit, finding)}")
    lines += ["", _summary(ui, audit)]
    return "\n".join(lines) + "\n"


def render_markdown(site: Site, lang: str, audit: Audit) -> str:
    """The report for GitHub's job summary: a table, each answered item linked to its file."""
    ui = load_ui_texts(site.root, lang)
    title = str(ui["audit_title"]).format(version=audit.version,
                                         file=_relative(site, audit.path))
    rows = [f"## {title}", "",
            f"| {ui['audit_col_status']} | {ui['audit_col_article']} | {ui['audit_col_item']} "
            f"| {ui['audit_col_where']} |",
            "|---|---|---|---|"]
    for finding in audit.findings:
        cell = _explain(site, lang, ui, audit, finding).replace("|", "\\|")
        if finding.status == ANSWERED and finding.heading:
            link, file = _where(site, audit, finding.heading)
            cell = f"{finding.heading.title} (`{file}`, `{link}`)".replace("|", "\\|")
        rows.append(f"| {ui[f'audit_status_{finding.status}']} | {_article(ui, finding.item)} "
                    f"| {ui[f'audit_item_{finding.item.id}']} | {cell} |")
    rows += ["", _summary(ui, audit), ""]
    return "\n".join(rows) + "\n"


def _summary(ui: dict[str, Any], audit: Audit) -> str:
    return str(ui["audit_summary"]).format(
        answered=audit.count(ANSWERED),
        missing=audit.count(MISSING) + audit.count(HEADING_NOT_FOUND),
        not_applicable=audit.count(NOT_APPLICABLE),
    )
