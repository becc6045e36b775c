"""`policy-site init`: a new shop's project that checks, builds and serves, holding no code."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx2
import yaml
from live_service import REFERENCE, LiveService, submit
from site_tree import run_policy_site
from smtp_server import SmtpServer
from test_workflow import _actionlint

from site_config.gdpr13 import ITEMS

CONTROLLER = "Laiks SIA"


def _init(tmp_path: Path, languages: str = "lv,en") -> Path:
    project = tmp_path / "laiks"
    result = run_policy_site(["init", str(project), "--controller", CONTROLLER,
                              "--languages", languages], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return project


def _fill(project: Path) -> None:
    """What the shop does after init: its real details for every TODO, the draft mark gone."""
    facts = project / "site_config" / "site.yml"
    text = facts.read_text("utf-8")
    text = re.sub(r'email: "TODO[^"]*"', 'email: "privatums@laiks.example"', text)
    text = re.sub(r'website: "TODO[^"]*"', 'website: "https://laiks.example"', text)
    text = re.sub(r"site_url: .*", "site_url: https://privatums.laiks.example/", text)
    facts.write_text(text, "utf-8")
    for index in project.glob("content/*/index.md"):
        text = index.read_text("utf-8").replace("draft: true\n", "")
        text = re.sub(r"^.*TODO.*$", "Laiks SIA wrote this section.", text, flags=re.M)
        index.write_text(text, "utf-8")


def test_init_writes_the_shops_data_and_no_code(tmp_path: Path) -> None:
    """init writes mkdocs.yml naming the plugin, site_config/, content/<lang>/, the workflow,
    the template and a README, and not one file of code."""
    project = _init(tmp_path, "lv,en,ru")
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert {"mkdocs.yml", "README.md", "requirements.txt", ".gitignore",
            ".github/workflows/policy.yml", ".github/pull_request_template.md",
            "site_config/site.yml", "site_config/rights.yml", "site_config/gdpr13.yml",
            "site_config/texts/form.ru.yml", "site_config/texts/email.lv.yml",
            "content/lv/index.md", "content/en/versions/index.md",
            "content/ru/index.md"} <= set(files)
    assert not [f for f in files if f.endswith((".py", ".html", ".css"))]
    config = yaml.safe_load((project / "mkdocs.yml").read_text("utf-8"))
    assert "hooks" not in config and "policy-site" in config["plugins"]
    languages = config["plugins"][0]["i18n"]["languages"]
    assert [(lang["locale"], lang["name"]) for lang in languages] == [
        ("lv", "Latviešu"), ("en", "English"), ("ru", "Русский")]
    assert (project / "content" / "lv" / "index.md").read_text("utf-8").startswith(
        '---\nversion: "1.0"\n')
    assert "draft: true" in (project / "content" / "ru" / "index.md").read_text("utf-8")


def test_check_in_a_new_project_lists_what_only_the_shop_can_fill_in(tmp_path: Path) -> None:
    """Right after init, check names the TODOs of site.yml, each TODO line of the policy in
    each language, the draft marks and the unsealed version, and nothing else."""
    project = _init(tmp_path)
    result = run_policy_site(["check"], cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in lines if line.startswith("site_config/")] == [
        "site_config/site.yml:5", "site_config/site.yml:6", "site_config/site.yml:10"]
    for lang in ("lv", "en"):
        mine = [line for line in lines if line.startswith(f"content/{lang}/index.md:")]
        assert sum("is a draft" in line for line in mine) == 1
        assert sum("still has a TODO" in line for line in mine) == 9
    assert sum("is not sealed yet" in line for line in lines) == 1
    assert len(lines) == 3 + 2 * 10 + 1


def test_init_fill_check_build_serve_and_one_request(tmp_path: Path, smtp: SmtpServer) -> None:
    """init, the shop's details filled in and sealed, check passes, build and serve work with
    no other step, and a request sent from /en/request/ is stored and confirmed by e-mail."""
    project = _init(tmp_path)
    _fill(project)
    sealed = run_policy_site(["seal"], cwd=project)
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    checked = run_policy_site(["check"], cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    built = run_policy_site(["build"], cwd=project)
    assert built.returncode == 0, built.stderr
    home = (project / "site" / "en" / "index.html").read_text("utf-8")
    assert "Privacy policy of Laiks SIA" in home and 'href="/en/request/?type=erasure' in home
    assert (project / "site" / "versions.json").is_file()
    assert (project / "site" / "assets" / "stylesheets" / "policy.css").is_file()

    service = LiveService(tmp_path / "var", project / "site", smtp.url, project=project)
    service.start()
    try:
        with httpx2.Client(base_url=service.base_url, headers={"Origin": service.base_url},
                           follow_redirects=False) as client:
            reference, _ = submit(client, "anna@laiks.example")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not smtp.messages:
            time.sleep(0.1)
    finally:
        service.stop()
    assert REFERENCE.fullmatch(reference)
    assert [m.recipients for m in smtp.messages] == [("anna@laiks.example",)]
    mail = smtp.messages[0].message
    assert reference in str(mail["Subject"]) and mail["Content-Language"] == "en"
    assert "Laiks SIA" in str(mail.get_body(preferencelist=("plain",)).get_content())


def test_audit_of_a_new_project_finds_every_item_under_its_heading(tmp_path: Path) -> None:
    """The starter policy has a section for every Art. 13 item and gdpr13.yml maps each."""
    project = _init(tmp_path)
    result = run_policy_site(["audit", "--strict"], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[answered]") == len(ITEMS)


def test_init_never_writes_into_a_folder_with_files(tmp_path: Path) -> None:
    """A folder that holds anything is refused in one sentence, and left as it was."""
    project = tmp_path / "busy"
    project.mkdir()
    (project / "notes.txt").write_text("mine", "utf-8")
    result = run_policy_site(["init", str(project), "--controller", CONTROLLER], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"policy-site init: {project} already exists and is not an empty folder: init writes "
        "a new project and never overwrites files.")
    assert [p.name for p in project.iterdir()] == ["notes.txt"]


def test_a_language_without_a_starter_gets_its_name_and_the_check_lists_its_texts(
        tmp_path: Path) -> None:
    """--languages lv,de: German is named Deutsch, and check (in Latvian, the project having no
    English) names every text and label still to write in German."""
    project = _init(tmp_path, "lv,de")
    config = yaml.safe_load((project / "mkdocs.yml").read_text("utf-8"))
    assert config["plugins"][0]["i18n"]["languages"][1]["name"] == "Deutsch"
    result = run_policy_site(["check"], cwd=project)
    assert "Valodā de trūkst teksta form_title failā form.de.yml" in result.stdout
    assert "Tiesībai access nav nosaukuma vai paskaidrojuma valodā de" in result.stdout


def test_the_new_projects_workflow_passes_actionlint(tmp_path: Path) -> None:
    """The workflow init writes would start on GitHub, and runs the audit as a report."""
    project = _init(tmp_path)
    workflow = project / ".github" / "workflows" / "policy.yml"
    result = _actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = yaml.safe_load(workflow.read_text("utf-8"))["jobs"]["check"]["steps"]
    audit = next(s for s in steps if "policy-site audit" in s.get("run", ""))
    assert "--strict" not in audit["run"]
