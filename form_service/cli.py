"""`policy-site`: one command for editors, staff and whoever runs the service.

Errors are one plain sentence on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from site_config.facts import FactsError, load_site
from site_config.project import find_project, project_at


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-12-31") from None


def _editor_language(explicit: str | None, codes: Sequence[str]) -> str:
    """--lang, else POLICY_EDITOR_LANG, else the locale (LC_ALL, LC_MESSAGES, LANG), else en."""
    candidates = [explicit, os.environ.get("POLICY_EDITOR_LANG")]
    candidates += [os.environ.get(v) for v in ("LC_ALL", "LC_MESSAGES", "LANG")]
    for value in candidates:
        if value and value[:2] in codes:
            return value[:2]
    return "en" if "en" in codes else codes[0]


def cmd_build(args: argparse.Namespace) -> int:
    from site_config.build_site import build_site

    out = build_site(args.root, args.site_dir, args.date)
    print(f"Built the site into {out}.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from site_config.checks import run_checks, sort_problems
    from site_config.facts import load_ui_texts

    site = load_site(args.root)
    lang = _editor_language(args.lang, site.language_codes)
    problems = sort_problems(run_checks(site, args.date or dt.date.today()))
    texts = load_ui_texts(site.root, lang)
    for problem in problems:
        print(problem.render(site, lang))
    if problems:
        outcome = texts["check_failed"].format(count=len(problems))
    else:
        from site_config.versions import load_versions

        count = len(load_versions(site.content_dir, site.default_language))
        outcome = texts["check_ok"].format(count=count)
    # GitHub Actions sets GITHUB_ACTIONS=true: there the editor reads annotations and
    # the job summary, not the log.
    github = args.format == "github" or (
        args.format is None and os.environ.get("GITHUB_ACTIONS") == "true"
    )
    if github:
        from site_config.github import report

        for command in report(site, lang, problems, outcome, args.compare_with, os.environ):
            print(command)
    print(outcome, file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def cmd_audit(args: argparse.Namespace) -> int:
    from site_config.facts import load_ui_texts
    from site_config.gdpr13 import render_markdown, render_text, run_audit

    site = load_site(args.root)
    lang = _editor_language(args.lang, site.language_codes)
    audit = run_audit(site, lang)
    print(render_text(site, lang, audit), end="")
    github = args.format == "github" or (
        args.format is None and os.environ.get("GITHUB_ACTIONS") == "true"
    )
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if github and summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(render_markdown(site, lang, audit))
    # A report, not a gate: the binding text is the editors' decision. --strict makes
    # a missing item an error (for a shop that wants its pipeline to insist).
    if args.strict and audit.incomplete:
        print(load_ui_texts(site.root, lang)["audit_strict_failed"], file=sys.stderr)
        return 1
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from site_config.init import init_project

    languages = [code.strip() for code in args.languages.split(",") if code.strip()]
    written = init_project(args.dir, args.controller, languages)
    print(f"Wrote a new policy project for {args.controller} in {args.dir} "
          f"({len(written)} files).")
    print(f"Next: cd {args.dir} && policy-site check — it lists what only the shop can fill in.")
    return 0


def cmd_new_version(args: argparse.Namespace) -> int:
    from site_config.new_version import new_version

    site = load_site(args.root)
    for path in new_version(site, args.id, args.effective):
        print(f"wrote {path.relative_to(site.root)}")
    print(
        f"Now edit the policy text in content/*/index.md, write the summary line of "
        f"version {args.id} in each language, then run `policy-site check`."
    )
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    from site_config.new_version import seal

    site = load_site(args.root)
    sealed = seal(site, args.date or dt.date.today())
    if sealed:
        print(f"Sealed version(s) {', '.join(sealed)} in site_config/ledger.json.")
    else:
        print("Nothing to seal: every version is already in site_config/ledger.json.")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    if args.date:
        os.environ["POLICY_BUILD_DATE"] = args.date.isoformat()
    from mkdocs.commands.serve import serve

    print(f"Preview on http://{args.host}:{args.port}/ — it reloads when you save a file. "
          "Stop with Ctrl+C.")
    serve(
        config_file=str(args.root / "mkdocs.yml"),
        dev_addr=f"{args.host}:{args.port}",
        livereload=True,
        watch=[str(args.root / "site_config")],
    )
    return 0


def cmd_secret(args: argparse.Namespace) -> int:
    from form_service.settings import new_secret

    # Only the key on stdout, so that `POLICY_SECRET_KEY=$(policy-site secret)` works.
    print(new_secret())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from form_service.serve import serve

    return serve(args)


def cmd_publish(args: argparse.Namespace) -> int:
    from form_service.publish import publish

    site_dir = args.site_dir or args.root / "site"
    done = publish(site_dir, args.caddy_headers)
    print(f"Compressed {done.files} files in {site_dir} (brotli: {done.original_bytes} → "
          f"{done.brotli_bytes} bytes)" +
          (f"; wrote the site's headers to {args.caddy_headers}." if args.caddy_headers else "."))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from form_service.migrate import run

    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-site", description="The Pulksteņu Outlets privacy policy site and service."
    )
    parser.add_argument(
        "--project", type=Path, metavar="DIR",
        help="the policy project to work on (default: the nearest folder from here upwards "
             "that holds mkdocs.yml and site_config/)",
    )
    # The option's earlier, hidden name, still used by scripts written for it.
    parser.add_argument("--root", type=Path, dest="project", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("build", cmd_build, "Build the static site into site/ (strict: any warning fails).")
    p.add_argument("--date", type=_date, help="treat this day as today (YYYY-MM-DD)")
    p.add_argument("--site-dir", type=Path, help="build here instead of site/")

    p = add("check", cmd_check, "Check the policy texts and say in plain words what to fix.")
    p.add_argument("--lang", help="language of the messages (a language of the project)")
    p.add_argument("--date", type=_date, help="treat this day as today (YYYY-MM-DD)")
    p.add_argument(
        "--format", choices=("text", "github"),
        help="github: also an annotation per problem and, when GITHUB_STEP_SUMMARY is set, "
             "a report in the job summary (the default when GITHUB_ACTIONS=true)",
    )
    p.add_argument(
        "--compare-with", metavar="REF",
        help="in the job summary, compare the policy texts with this branch or commit, "
             "word by word (e.g. origin/main)",
    )

    p = add("audit", cmd_audit, "Report which items GDPR Art. 13 requires the policy states, "
            "where the text answers each (site_config/gdpr13.yml) and what is missing.")
    p.add_argument("--lang", help="language of the report (a language of the project)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 when an item is missing")
    p.add_argument(
        "--format", choices=("text", "github"),
        help="github: also the report as a table in the job summary (GITHUB_STEP_SUMMARY; "
             "the default when GITHUB_ACTIONS=true)",
    )

    p = add("init", cmd_init, "Write a new, working policy project for another shop into DIR.")
    p.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")
    p.add_argument("--controller", required=True, metavar="NAME",
                   help='the shop\'s legal name, e.g. "Name SIA"')
    p.add_argument("--languages", default="lv,en", metavar="CODES",
                   help="the site's languages, the binding one first (default: lv,en)")
    p.set_defaults(needs_project=False)

    p = add("new-version", cmd_new_version, "Archive the current version and start the next one.")
    p.add_argument("id", help="the new version's number, e.g. 1.1")
    p.add_argument("--effective", type=_date, required=True, help="when it takes effect")

    p = add("seal", cmd_seal, "Record the fingerprints of new, final versions in the ledger.")
    p.add_argument("--date", type=_date, help="treat this day as today (YYYY-MM-DD)")

    p = add("preview", cmd_preview, "Show the working copy on 127.0.0.1 with live reload.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--date", type=_date, help="treat this day as today (YYYY-MM-DD)")

    p = add("serve", cmd_serve, "Build the site if needed and serve it with the request form.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)

    p = add("publish", cmd_publish, "Prepare a built site for the web server: .br and .gz "
            "copies, and the site's security headers for Caddy.")
    p.add_argument("--site-dir", type=Path, help="the built site (default: site/)")
    p.add_argument("--caddy-headers", type=Path, metavar="FILE",
                   help="write the header lines that deploy/Caddyfile imports here")

    add("migrate", cmd_migrate, "Bring the database in POLICY_DATABASE_URL up to date "
        "(run once before starting or upgrading instances).")

    add("secret", cmd_secret,
        "Print a fresh random key for POLICY_SECRET_KEY (256 bits; keep it secret).")

    from form_service.staff import member_commands
    from form_service.staff.commands import add_command

    add_command(sub)
    member_commands.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from site_config.build_site import BuildError
    from site_config.init import InitError
    from site_config.new_version import ReleaseError
    from site_config.versions import VersionError

    try:
        if getattr(args, "needs_project", True):
            args.root = project_at(args.project) if args.project else find_project()
        return int(args.func(args))
    except (BuildError, ReleaseError, FactsError, InitError, ValueError) as exc:
        print(f"policy-site {args.command}: {exc}", file=sys.stderr)
        return 1
    except VersionError as exc:
        print(f"policy-site {args.command}: {exc.path}: run `policy-site check`.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
