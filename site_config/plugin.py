"""The generator's MkDocs hooks as a plugin: `plugins: [i18n, policy-site]` in mkdocs.yml.

A shop's project names the plugin instead of a hooks file, so its repository
holds no copy of the code: the hooks and the theme overrides come from the
installed package (the entry point `policy-site` in pyproject.toml), the texts,
facts and versions from the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import BasePlugin

from site_config import hooks

# main.html (notices, banner, "use your rights") and policy.css: the pages the
# hooks fill in. A shop restyles them with a custom_dir of its own, searched first.
OVERRIDES = Path(__file__).resolve().parent / "overrides"


class PolicySitePlugin(BasePlugin):  # type: ignore[type-arg]
    """Every `on_*` function of site_config.hooks, with its priority, as this plugin's."""

    def __init__(self) -> None:
        super().__init__()
        for name in dir(hooks):
            if name.startswith("on_") and name != "on_config":
                setattr(self, name, getattr(hooks, name))

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        dirs: list[str] = config.theme.dirs
        if str(OVERRIDES) not in (str(Path(d).resolve()) for d in dirs):
            # After the project's own custom_dir (if any), before Material's templates.
            at = 1 if config.theme.custom_dir else 0
            dirs.insert(at, str(OVERRIDES))
        result: Any = hooks.on_config(config)
        return result if result is not None else config
