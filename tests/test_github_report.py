"""`policy-site check` on GitHub Actions: annotations on files and lines, and a job summary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from site_tree import (
    LANGUAGES,
    commit_all,
    copy_project,
    edit,
    per_language,
    release,
    run_policy_site,
)

from site_config.github import escape_data, escape_property

DAY = "2026-11-27"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project, committed on main in a git repository of its own."""
    root = tmp_path / "clone"
    root.mkdir()
    copy_project(root)
    commit_all(root, "The policy as published")
    return root


def _github_check(root: Path, summary: Path, *args: str) -> tuple[int, list[str], str]:
    """Run the check as the workflow does; return its status, stdout lines and the summary."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_WORKSPACE": str(root)}
    result = run_policy_site(["check", "--date", DAY, *args], root, env)
    assert "Traceback" not in result.stderr, result.stderr
    written = summary.read_text(encoding="utf-8") if summary.exists() else ""
    return result.returncode, result.stdout.splitlines(), written


def test_workflow_command_values_are_escaped() -> None:
    """%, CR and LF are escaped in messages, and also ':' and ',' in properties."""
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("C:\\a,b\n") == "C%3A\\a%2Cb%0A"


def test_each_problem_is_an_annotation_on_its_file_and_line(project: Path,
                                                            tmp_path: Path) -> None:
    """A changed published text is an ::error on content/en/index.md line 2, status 1."""
    edit(project / "content" / "en" / "index.md", "personal data", "personal information")
    status, lines, _ = _github_check(project, tmp_path / "summary.md")
    assert status == 1
    errors = [line for line in lines if line.startswith("::error ")]
    assert errors == [
        "::error file=content/en/index.md,line=2,title=policy-site check::You changed the "
        "policy text, but it still carries the number of published version 1.0. Run "
        "`policy-site new-version 1.1 --effective YYYY-MM-DD`: it keeps version 1.0 in the "
        "archive and your change becomes a new version."
    ]
    # The plain line stays in the log too.
    assert lines[0].startswith("content/en/index.md:2: You changed the policy text")


def test_a_problem_without_a_line_is_annotated_on_its_file(project: Path,
                                                           tmp_path: Path) -> None:
    """A page missing in the other languages is an ::error on the page that exists, with no
    line, once for each language that lacks it."""
    (project / "content" / "en" / "about.md").write_text("# About\n", encoding="utf-8")
    status, lines, _ = _github_check(project, tmp_path / "summary.md")
    assert status == 1
    errors = [line for line in lines if line.startswith("::error ")]
    assert errors == [
        "::error file=content/en/about.md,title=policy-site check::The page about.md exists in "
        f"en but not in {lang}. Create content/{lang}/about.md with the translation."
        for lang in LANGUAGES if lang != "en"]


def test_summary_lists_the_problems_and_the_word_changes(project: Path, tmp_path: Path) -> None:
    """The job summary has the outcome, a row per problem and the words the branch changed."""
    commit_all(project, "Start an edit", branch="edit")
    edit(project / "content" / "en" / "index.md", "personal data", "personal information")
    status, _, summary = _github_check(project, tmp_path / "summary.md", "--compare-with", "main")
    assert status == 1
    assert summary.startswith("## Policy texts check\n\nFound 1 problems.")
    assert "| Where | What to fix |\n|---|---|\n| `content/en/index.md:2` | You changed" in summary
    assert "### What this change does to the policy texts (compared with main)" in summary
    assert "#### `content/en/index.md`" in summary
    assert "<del>[−data−]</del> <ins>[+information+]</ins>" in summary
    assert "content/lv/index.md" not in summary  # unchanged texts are not listed


def test_summary_of_a_release_shows_the_archived_copy_and_the_new_words(
        project: Path, tmp_path: Path) -> None:
    """After new-version, edit and seal, the summary passes and names what changed."""
    commit_all(project, "Start version 1.1", branch="v1.1")
    release(project, "1.1", dt.date(2026, 12, 28), per_language({
        "lv": ("SMS apziņošanu", "SMS un e-pasta apziņošanu", "Arī e-pasta paziņojumi."),
        "en": ("SMS notifications", "SMS and e-mail notifications", "E-mail notices too."),
        "ru": ("SMS-уведомления", "SMS- и e-mail-уведомления", "Также уведомления по e-mail."),
    }), dt.date(2026, 11, 27))
    status, lines, summary = _github_check(project, tmp_path / "summary.md",
                                           "--compare-with", "main")
    assert status == 0, lines
    assert not [line for line in lines if line.startswith("::")]
    assert summary.startswith("## Policy texts check\n\nAll good: 2 versions")
    assert ("#### `content/en/versions/1.0.md`\n\nA new file: an exact copy of "
            "`content/en/index.md` as it is on main.") in summary
    assert "SMS <ins>[+and e-mail+]</ins> notifications" in summary
    assert "SMS <ins>[+un e-pasta+]</ins> apziņošanu" in summary


def test_an_unknown_base_is_a_warning_not_a_failure(project: Path, tmp_path: Path) -> None:
    """A base git does not know is said in the summary and a warning; the check still passes."""
    status, lines, summary = _github_check(project, tmp_path / "summary.md",
                                           "--compare-with", "origin/nowhere")
    assert status == 0
    assert [line for line in lines if line.startswith("::")] == [
        "::warning title=policy-site check::The texts could not be compared with "
        "origin/nowhere: git knows no branch or commit 'origin/nowhere' here (a shallow "
        "checkout lacks it: fetch the whole history)."
    ]
    assert "The texts could not be compared with origin/nowhere" in summary


def test_outside_github_the_check_prints_plain_lines_only(project: Path,
                                                          tmp_path: Path) -> None:
    """Without GITHUB_ACTIONS=true (or --format github) there are no workflow commands."""
    edit(project / "content" / "en" / "index.md", "personal data", "personal information")
    summary = tmp_path / "summary.md"
    result = run_policy_site(["check", "--date", DAY], project,
                             {"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1
    assert "::" not in result.stdout
    assert not summary.exists()
    forced = run_policy_site(["check", "--date", DAY, "--format", "github"], project)
    assert "::error file=content/en/index.md,line=2," in forced.stdout
