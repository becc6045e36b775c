"""`policy-site check`: each editor mistake fails the check with a plain message."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from site_tree import ROOT, copy_project, edit, per_language, site_of

from form_service.cli import main
from site_config.checks import Problem, run_checks
from site_config.facts import Site
from site_config.new_version import new_version, seal

TODAY = dt.date(2026, 11, 27)


@pytest.fixture
def two_versions(tmp_path: Path) -> Site:
    """A project with sealed versions 1.0 (archived) and 1.1 (the working copy)."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 1))
    words_of = per_language({"lv": "Kurjeriem.", "en": "Couriers.", "ru": "Курьерам."})
    for lang, words in words_of.items():
        index = site.content_dir / lang / "index.md"
        edit(index, 'summary: "TODO: one sentence on what changed"', f"summary: {words}")
        index.write_text(index.read_text("utf-8") + f"\n{words}\n", encoding="utf-8")
    assert seal(site, TODAY) == ["1.1"]
    return site


def keys(problems: list[Problem]) -> set[str]:
    return {p.key for p in problems}


def test_the_committed_content_passes() -> None:
    """The repository's own policy texts pass every check."""
    from site_config.facts import load_site

    assert run_checks(load_site(ROOT), TODAY) == []


def test_a_prepared_release_passes(two_versions: Site) -> None:
    """new-version, an edit with a summary, and seal leave nothing to report."""
    assert run_checks(two_versions, TODAY) == []


def test_page_missing_in_one_language(two_versions: Site) -> None:
    """A page that exists in Latvian only is named, with the file to create."""
    (two_versions.content_dir / "lv" / "par-mums.md").write_text("# Par mums\n", "utf-8")
    problems = run_checks(two_versions, TODAY)
    assert keys(problems) == {"check_missing_page"}
    assert "content/en/par-mums.md" in problems[0].render(two_versions, "en")


def test_version_missing_in_one_language(two_versions: Site) -> None:
    """An archived version deleted from English is reported as missing there."""
    (two_versions.content_dir / "en" / "versions" / "1.0.md").unlink()
    assert {"check_missing_page", "check_missing_in_language"} <= keys(
        run_checks(two_versions, TODAY)
    )


def test_version_ids_differ_between_languages(two_versions: Site) -> None:
    """The working copies of the two languages must carry the same version id."""
    edit(two_versions.content_dir / "en" / "index.md", 'version: "1.1"', 'version: "1.2"')
    assert "check_version_differs" in keys(run_checks(two_versions, TODAY))


def test_effective_dates_differ_between_languages(two_versions: Site) -> None:
    """One version must take effect on the same day in every language."""
    edit(two_versions.content_dir / "en" / "index.md", "effective: 2026-12-01",
         "effective: 2026-12-02")
    assert "check_effective_differs" in keys(run_checks(two_versions, TODAY))


def test_released_text_changed(two_versions: Site) -> None:
    """A change to an archived, sealed text is caught by its fingerprint."""
    edit(two_versions.content_dir / "lv" / "versions" / "1.0.md", "Pasta serveriem.",
         "Pasta serveriem un kurjeriem.")
    problems = run_checks(two_versions, TODAY)
    assert keys(problems) == {"check_released_changed"}
    assert "versions/1.0.md" in problems[0].render(two_versions, "lv")


def test_current_text_changed_without_new_version(two_versions: Site) -> None:
    """Editing the sealed working copy without a new id says to run new-version."""
    edit(two_versions.content_dir / "en" / "index.md", "Couriers.", "Couriers and vans.")
    problems = run_checks(two_versions, TODAY)
    assert keys(problems) == {"check_current_changed"}
    assert "policy-site new-version 1.2" in problems[0].render(two_versions, "en")


def test_summary_missing(tmp_path: Path) -> None:
    """A new version whose summary line is still the placeholder is reported."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 1))
    assert "check_summary_missing" in keys(run_checks(site, TODAY))


def test_effective_date_goes_backwards(tmp_path: Path) -> None:
    """A new version may not take effect before the version it replaces."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 1))
    for lang in site.language_codes:
        edit(site.content_dir / lang / "index.md", "effective: 2026-12-01",
             "effective: 2026-11-01")
    assert "check_effective_backwards" in keys(run_checks(site, TODAY))


def test_new_version_not_sealed(tmp_path: Path) -> None:
    """A version missing from the ledger asks for `policy-site seal`."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 1))
    problems = run_checks(site, TODAY)
    assert "check_not_sealed" in keys(problems)
    assert any("policy-site seal" in p.render(site, "en") for p in problems)


def test_unquoted_version_number_is_explained(two_versions: Site) -> None:
    """version: 1.10 without quotes would read as 1.1; the check asks for quotes."""
    edit(two_versions.content_dir / "lv" / "index.md", 'version: "1.1"', "version: 1.10")
    problems = run_checks(two_versions, TODAY)
    assert keys(problems) == {"check_bad_version"}
    assert problems[0].line == 2


def test_text_missing_in_a_language(two_versions: Site) -> None:
    """A UI text present in Latvian but missing in English is named with its file."""
    path = two_versions.config_dir / "texts" / "site.en.yml"
    edit(path, 'history_link: "All versions and changes"\n', "")
    problems = [p for p in run_checks(two_versions, TODAY) if p.key == "check_text_missing"]
    assert [(p.params["key"], p.path.name) for p in problems] == [("history_link", "site.en.yml")]


def test_text_only_one_language_has_is_missing_in_the_others(two_versions: Site) -> None:
    """Every language's keys count, not only the binding one's: a text added in English
    alone is named as missing in Latvian and Russian, each in its own file."""
    path = two_versions.config_dir / "texts" / "form.en.yml"
    path.write_text(path.read_text("utf-8") + 'form_new_hint: "A new hint."\n', "utf-8")
    problems = [p for p in run_checks(two_versions, TODAY) if p.key == "check_text_missing"]
    assert sorted((p.params["key"], p.path.name) for p in problems) == [
        ("form_new_hint", "form.lv.yml"), ("form_new_hint", "form.ru.yml")]


def test_material_change_needs_notice(tmp_path: Path) -> None:
    """A material change taking effect sooner than the notice period is refused."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 10))
    for lang in site.language_codes:
        edit(site.content_dir / lang / "index.md", "material: false", "material: true")
    problems = [p for p in run_checks(site, TODAY) if p.key == "check_material_notice"]
    assert problems and problems[0].params["earliest"] == "2026-12-27"


def test_messages_in_latvian(two_versions: Site) -> None:
    """The same problem reads in Latvian when the editor's language is Latvian."""
    edit(two_versions.content_dir / "lv" / "index.md", "Kurjeriem.\n", "Kurjeriem un citiem.\n")
    problem = run_checks(two_versions, TODAY)[0]
    assert "Jūs mainījāt politikas tekstu" in problem.render(two_versions, "lv")


def test_cli_fails_with_plain_words(two_versions: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """The command exits 1 and prints file:line: message lines, no traceback."""
    edit(two_versions.content_dir / "en" / "index.md", "Couriers.", "Couriers and vans.")
    code = main(["--project", str(two_versions.root), "check", "--lang", "en",
                 "--date", "2026-11-27"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith("content/en/index.md:2: You changed the policy text")
    assert "Traceback" not in out + err
    assert "Found 1 problems" in err


def test_cli_passes_on_good_content(two_versions: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """The command exits 0 and says so when nothing is wrong."""
    code = main(["--project", str(two_versions.root), "check", "--lang", "en",
                 "--date", "2026-11-27"])
    assert code == 0
    assert "All good: 2 versions" in capsys.readouterr().out


def test_a_fourth_half_translated_language_is_listed_text_by_text(tmp_path: Path) -> None:
    """A fourth language added with no code (mkdocs.yml, content/de, half of the site texts,
    a form table missing plural forms) gets every missing text named, with its file."""
    import yaml

    root = copy_project(tmp_path)
    config = root / "mkdocs.yml"
    edit(config, "        - locale: ru\n",
         "        - locale: de\n          name: Deutsch\n          build: true\n"
         "        - locale: ru\n")
    shutil.copytree(root / "content" / "en", root / "content" / "de")
    texts = root / "site_config" / "texts"
    site_en = yaml.safe_load((texts / "site.en.yml").read_text("utf-8"))
    kept = dict(list(site_en.items())[: len(site_en) // 2])
    (texts / "site.de.yml").write_text(yaml.safe_dump(kept, allow_unicode=True), "utf-8")
    form_en = yaml.safe_load((texts / "form.en.yml").read_text("utf-8"))
    form_de = dict(form_en)
    plural = "Field cannot be longer than %(max)d character."
    form_de["form_wtforms"] = {**form_en["form_wtforms"], plural: "Zu lang."}
    (texts / "form.de.yml").write_text(yaml.safe_dump(form_de, allow_unicode=True), "utf-8")
    site = site_of(root)
    problems = run_checks(site, TODAY)
    missing = sorted((p.params["key"], p.path.name) for p in problems
                     if p.key == "check_text_missing")
    untranslated = [  # the areas with no German file at all: every text of each
        (key, f"{path.name.split('.')[0]}.de.yml")
        for path in sorted(texts.glob("*.en.yml"))
        if path.name not in ("site.en.yml", "form.en.yml")
        for key in yaml.safe_load(path.read_text("utf-8"))]
    assert missing == sorted([(key, "site.de.yml") for key in site_en if key not in kept]
                             + untranslated)
    audit_en = yaml.safe_load((texts / "audit.en.yml").read_text("utf-8"))
    plurals = [(p.params["key"], p.params["categories"]) for p in problems
               if p.key == "check_plural_missing"]
    assert plurals == [(f"form_wtforms: {plural}", "one, other")]
    assert sorted(p.params["right"] for p in problems if p.key == "check_right_label_missing") \
        == sorted(r.id for r in site.rights)
    assert [p.params["lang"] for p in problems if p.key == "check_authority_name_missing"] == [
        "de"]
    assert next(p.render(site, "en") for p in problems if p.key == "check_text_missing") == (
        f"site_config/texts/audit.de.yml: The text {next(iter(audit_en))} is missing in de in "
        "audit.de.yml. Add it (see site_config/texts/audit.lv.yml).")
    # Nothing else: the German pages and the other languages are complete.
    assert {p.key for p in problems} == {
        "check_text_missing", "check_plural_missing", "check_right_label_missing",
        "check_authority_name_missing", "check_translation_not_sealed"}


def test_a_text_with_a_number_needs_every_form_of_its_language(two_versions: Site) -> None:
    """A text like "{n} requests" with no Russian "few" form is named, with the forms
    Russian numbers take (CLDR: 2 запроса, 5 запросов)."""
    path = two_versions.config_dir / "texts" / "console.ru.yml"
    edit(path, '  few: "{n} запроса."\n', "")
    problems = [p for p in run_checks(two_versions, TODAY) if p.key == "check_plural_missing"]
    assert [(p.params["key"], p.params["categories"], p.params["needed"], p.path.name)
            for p in problems] == [("console_count", "few", "few, many, one, other",
                                    "console.ru.yml")]
