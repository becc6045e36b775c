"""Which policy project a command works on.

The code comes from the installed package; the shop's texts, settings and
versions come from a project folder: one holding `mkdocs.yml` and
`site_config/`. Like git and mkdocs, `policy-site` finds it from the current
directory upwards, so the same installation serves any clone of the project.
"""

from __future__ import annotations

from pathlib import Path

from site_config.facts import FactsError

MARKERS = ("mkdocs.yml", "site_config")


class ProjectNotFound(FactsError):
    """Raised when no project is where a command was asked to work; one sentence."""


def is_project(folder: Path) -> bool:
    return (folder / "mkdocs.yml").is_file() and (folder / "site_config").is_dir()


def find_project(start: Path | None = None) -> Path:
    """The nearest project folder from `start` (default: the current directory) upwards."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    raise ProjectNotFound(
        f"{here} is not inside a policy project (no folder from here upwards holds "
        "mkdocs.yml and site_config/): run the command in the project's folder or give "
        "--project DIR."
    )


def project_at(folder: Path) -> Path:
    """`folder` itself as the project, as named by --project DIR."""
    resolved = Path(folder).resolve()
    if not is_project(resolved):
        raise ProjectNotFound(
            f"--project {folder} is not a policy project: it needs mkdocs.yml and a "
            "site_config/ folder."
        )
    return resolved
