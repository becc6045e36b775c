"""The GitHub workflow would start and do its work on GitHub's hosted runners."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from site_tree import ROOT

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck from the test environment, so that the run: scripts are checked the
    # same on every machine; the workflows hold no Python for pyflakes.
    return subprocess.run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), "-pyflakes=",
         *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def _workflow() -> dict[Any, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "policy.yml").read_text("utf-8"))


def test_workflows_pass_actionlint() -> None:
    """Every workflow passes actionlint: syntax, expressions, action versions and scripts."""
    assert WORKFLOWS
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_refuses_actions_on_node_20(tmp_path: Path) -> None:
    """actionlint knows that actions on Node 20 no longer start, so the test above means it."""
    old = tmp_path / ".github" / "workflows" / "old.yml"
    old.parent.mkdir(parents=True)
    old.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
    )
    result = _actionlint(old)
    assert result.returncode == 1
    assert 'runtime "node20" is deprecated' in result.stdout


def test_the_runner_is_told_where_its_browser_is() -> None:
    """The tests use the runner's Google Chrome; PostgreSQL and Redis answer before the steps."""
    check = _workflow()["jobs"]["check"]
    assert check["env"]["POLICY_CHROMIUM"] == "/usr/bin/google-chrome"
    for service in check["services"].values():
        assert "--health-cmd" in service["options"]


def test_a_pull_request_is_compared_with_its_base_branch() -> None:
    """The check step compares a pull request's texts with origin/<base> from a full clone."""
    steps = _workflow()["jobs"]["check"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    check = next(s for s in steps if s.get("run", "").startswith("make check"))
    assert "format('origin/{0}', github.base_ref)" in check["env"]["COMPARE_WITH"]


def test_the_site_is_built_every_day_after_midnight_in_riga() -> None:
    """A daily run at 00:15 UTC (02:15 or 03:15 in Riga) builds the site for that day."""
    workflow = _workflow()
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert workflow[True]["schedule"] == [{"cron": "15 0 * * *"}]
    daily = workflow["jobs"]["daily-build"]
    assert "schedule" in daily["if"]
    assert any(step.get("run") == "make build" for step in daily["steps"])


def test_the_art_13_report_runs_on_every_pull_request_and_never_fails_it() -> None:
    """The check job runs `make audit` (a report in the job summary) without --strict, and
    even when the editor check found problems."""
    steps = _workflow()["jobs"]["check"]["steps"]
    audit = next(s for s in steps if s.get("run") == "make audit")
    assert "!cancelled()" in audit["if"]
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "$(BIN)/policy-site audit $(if $(filter yes,$(AUDIT_STRICT)),--strict)" in makefile
