"""`policy-site` works on the project where it is run, from any installation of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from site_tree import POLICY_SITE, ROOT, copy_project, edit, run_policy_site

B_MARK = "All versions and changes (clone B)"


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_policy_site(command[1:], cwd, program=Path(command[0]))


def _clone_b(tmp_path: Path) -> Path:
    """A second copy of the project, with an English text of its own."""
    clone = tmp_path / "clone-b"
    clone.mkdir()
    copy_project(clone)
    edit(clone / "site_config" / "texts" / "site.en.yml",
         'history_link: "All versions and changes"', f'history_link: "{B_MARK}"')
    return clone


def test_help_shows_the_project_option() -> None:
    """`policy-site --help` shows --project DIR and says how the project is found."""
    result = _run([str(POLICY_SITE), "--help"], cwd=ROOT)
    assert result.returncode == 0
    assert "--project DIR" in result.stdout
    assert "mkdocs.yml and site_config/" in " ".join(result.stdout.split())


def test_outside_a_project_is_one_sentence(tmp_path: Path) -> None:
    """Run where no folder upwards is a project, a command says so in one line, exit status 1."""
    result = _run([str(POLICY_SITE), "check"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"policy-site check: {tmp_path} is not inside a policy project")
    assert "--project DIR" in lines[0] and "Traceback" not in result.stderr


def test_project_option_naming_no_project_is_one_sentence(tmp_path: Path) -> None:
    """--project naming a folder without mkdocs.yml and site_config/ is one line, status 1."""
    result = _run([str(POLICY_SITE), "--project", str(tmp_path), "build"], cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"policy-site build: --project {tmp_path} is not a policy project: it needs "
        "mkdocs.yml and a site_config/ folder."
    )


def test_project_option_works_from_anywhere(tmp_path: Path) -> None:
    """--project DIR builds that project wherever the command is run."""
    clone = _clone_b(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run([str(POLICY_SITE), "--project", str(clone), "build", "--date", "2026-12-01"],
                  cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert B_MARK in (clone / "site" / "en" / "index.html").read_text(encoding="utf-8")
    assert not (elsewhere / "site").exists()


def test_editable_install_works_on_the_clone_it_is_run_in(tmp_path: Path) -> None:
    """The editable install, run in a subfolder of another clone, builds and checks that clone."""
    clone = _clone_b(tmp_path)
    inside = clone / "content" / "en"
    built = _run([str(POLICY_SITE), "build", "--date", "2026-12-01"], cwd=inside)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == f"Built the site into {clone / 'site'}."
    assert B_MARK in (clone / "site" / "en" / "index.html").read_text(encoding="utf-8")
    checked = _run([str(POLICY_SITE), "check", "--date", "2026-12-01"], cwd=inside)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _install_copy_of_a(tmp_path: Path) -> Path:
    """A virtual environment with the package installed (not editable) from a copy of this
    repository; the copy is deleted afterwards. Returns the environment's policy-site."""
    clone_a = tmp_path / "clone-a"
    clone_a.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, clone_a / name)
    for package in ("site_config", "form_service"):
        shutil.copytree(ROOT / package, clone_a / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies (and pip, setuptools) are the test environment's, seen through a
    # .pth line, so that nothing is downloaded; the package itself lands in the new venv.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", str(clone_a)], cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    where = _run([str(python), "-c", "import site_config; print(site_config.__file__)"],
                 cwd=tmp_path)
    assert where.stdout.startswith(purelib), where.stdout
    shutil.rmtree(clone_a)
    return venv / "bin" / "policy-site"


def test_installed_copy_builds_and_checks_the_clone_it_is_run_in(tmp_path: Path) -> None:
    """A `pip install .` of clone A, run inside clone B, builds and checks B (A is gone)."""
    policy_site = _install_copy_of_a(tmp_path)
    clone = _clone_b(tmp_path)

    built = _run([str(policy_site), "build", "--date", "2026-12-01"], cwd=clone)
    assert built.returncode == 0, built.stderr
    page = (clone / "site" / "en" / "index.html").read_text(encoding="utf-8")
    assert B_MARK in page
    # The hooks ran: the policy-site plugin of the installation A, with B's texts.
    assert (clone / "site" / "versions.json").is_file()

    checked = _run([str(policy_site), "check", "--date", "2026-12-01"], cwd=clone)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    edit(clone / "content" / "en" / "index.md", "info@pulkstenu-outlets.lv", "info@b.example")
    broken = _run([str(policy_site), "check", "--date", "2026-12-01"], cwd=clone / "content")
    assert broken.returncode == 1
    assert broken.stdout.startswith("content/en/index.md:2: You changed the policy text")


def test_installed_copy_inits_a_project_that_builds(tmp_path: Path) -> None:
    """`pip install .` ships what init and the build need (starter files, default texts,
    theme overrides): a project it writes builds with that installation alone."""
    policy_site = _install_copy_of_a(tmp_path)
    project = tmp_path / "new-shop"
    made = _run([str(policy_site), "init", str(project), "--controller", "Laiks SIA"],
                cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    built = _run([str(policy_site), "build"], cwd=project)
    assert built.returncode == 0, built.stderr
    assert (project / "site" / "versions.json").is_file()
    assert (project / "site" / "assets" / "stylesheets" / "policy.css").is_file()
    assert "Laiks SIA konfidencialitātes politika" in (project / "site" / "index.html").read_text(
        encoding="utf-8")
