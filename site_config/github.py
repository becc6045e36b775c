"""`policy-site check` on GitHub Actions: where an editor looks, not a raw log.

Each problem becomes an error annotation on its file and line (a workflow
command on standard output), and the whole report, with the word-level
comparison of the policy texts the pull request changes, is appended to the
job summary (the file named by GITHUB_STEP_SUMMARY).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from site_config.checks import Problem
from site_config.compare import ChangedText, CompareError, changed_texts
from site_config.diff import word_diff_markdown
from site_config.facts import Site, load_ui_texts
from site_config.versions import split_front_matter


def escape_data(text: str) -> str:
    """A workflow command's message, as GitHub's runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (file=, title=): also ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _workspace_path(site: Site, path: Path, env: Mapping[str, str]) -> str:
    """The file as GitHub names it: relative to the checkout (GITHUB_WORKSPACE), else to
    the project."""
    resolved = path.resolve()
    for base in (env.get("GITHUB_WORKSPACE"), site.root):
        if base:
            try:
                return resolved.relative_to(Path(base).resolve()).as_posix()
            except ValueError:
                continue
    return str(path)


def annotation(problem: Problem, site: Site, lang: str, env: Mapping[str, str]) -> str:
    """`::error file=…,line=…,title=…::message` for one problem."""
    texts = load_ui_texts(site.root, lang)
    props = [f"file={escape_property(_workspace_path(site, problem.path, env))}"]
    if problem.line:
        props.append(f"line={problem.line}")
    props.append(f"title={escape_property(str(texts['report_annotation_title']))}")
    return f"::error {','.join(props)}::{escape_data(problem.message(site, lang))}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _problems_table(problems: list[Problem], site: Site, lang: str,
                    texts: dict[str, Any]) -> list[str]:
    lines = [f"| {texts['report_where']} | {texts['report_problem']} |", "|---|---|"]
    for problem in problems:
        lines.append(f"| `{problem.where(site)}` | {_cell(problem.message(site, lang))} |")
    return lines


def _readable(text: str) -> str:
    """The file without its header's `---` lines, which would only be noise in the diff."""
    meta, body = split_front_matter(text)
    return f"{meta}\n\n{body}" if meta else body


def _one_text(change: ChangedText, changed: list[ChangedText], base: str,
              texts: dict[str, Any]) -> str:
    if change.new is None:
        return str(texts["report_removed_file"])
    if change.old is None:
        # new-version archives the text in force: say so instead of repeating it whole.
        source = next((c.path for c in changed if c.old is not None and c.old == change.new), None)
        if source:
            return str(texts["report_new_copy"]).format(file=f"`{source}`", base=base)
        return str(texts["report_new_file"]).format(words=len(change.new.split()))
    markdown, runs = word_diff_markdown(_readable(change.old), _readable(change.new))
    return markdown if runs else str(texts["report_only_spacing"])


def _comparison(site: Site, base: str, texts: dict[str, Any]) -> tuple[list[str], str | None]:
    """The summary's comparison section, and why it could not be made (or None)."""
    lines = [f"### {texts['report_changes'].format(base=base)}", ""]
    try:
        changed = changed_texts(site, base)
    except CompareError as exc:
        reason = texts["report_compare_failed"].format(base=base, reason=exc)
        return [*lines, reason, ""], reason
    if not changed:
        return [*lines, texts["report_no_changes"].format(base=base), ""], None
    lines += [texts["report_legend"], ""]
    for change in changed:
        lines += [f"#### `{change.path}`", "", _one_text(change, changed, base, texts), ""]
    return lines, None


def summary(site: Site, lang: str, problems: list[Problem], outcome: str,
            base: str | None) -> tuple[str, str | None]:
    """The job summary in Markdown, and why the comparison with `base` failed (or None)."""
    texts = load_ui_texts(site.root, lang)
    lines = [f"## {texts['report_title']}", "", outcome, ""]
    if problems:
        lines += [*_problems_table(problems, site, lang, texts), ""]
    failure = None
    if base:
        section, failure = _comparison(site, base, texts)
        lines += section
    return "\n".join(lines), failure


def report(site: Site, lang: str, problems: list[Problem], outcome: str,
           base: str | None, env: Mapping[str, str]) -> list[str]:
    """The workflow commands to print, after appending the summary to GITHUB_STEP_SUMMARY
    when that is set."""
    commands = [annotation(problem, site, lang, env) for problem in problems]
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        markdown, failure = summary(site, lang, problems, outcome, base)
        if failure:
            title = escape_property(str(load_ui_texts(site.root, lang)["report_annotation_title"]))
            commands.append(f"::warning title={title}::{escape_data(failure)}")
        # Appended, not written: other steps of the job add their own parts.
        with open(summary_file, "a", encoding="utf-8") as out:
            out.write(markdown + "\n")
    return commands
