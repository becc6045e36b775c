"""How much our site build costs next to plain mkdocs-material, and how it grows.

For N versions (default 1, 10, 50, 200) x the project's languages (lv, en, ru)
this script writes a project tree into a temporary folder: the real content/<lang>/index.md text is
version 1.0, and every later version changes a few words of the one before
(so comparison pages have real diffs); effective dates rise a week apart and
all lie before the build date. The newest version is content/<lang>/index.md,
the others content/<lang>/versions/1.<i>.md.

Each tree is built twice, each build in a fresh Python process:

* ours  - our mkdocs.yml, site_config/ (hooks, texts, theme overrides), built
          with site_config.build_site.build_site (strict). The hooks add, per
          language, the newest version's archived page, N-1 word-diff comparison
          pages, the history table, the version/rights blocks, and write
          /versions.json and each language's feed.xml.
* plain - the same Markdown, our mkdocs.yml without `hooks` and without
          `theme.custom_dir` (so: material, font: false, the same i18n plugin,
          nav and Markdown extensions), built by load_config + build (strict).
          To render the same pages, the baseline gets as plain Markdown files
          the newest version's archived page and one versions/<id>/changes.md
          per comparison (see --baseline-changes for its contents).

Measured per build: the time of load_config + build inside the child (the
interpreter start and the mkdocs imports, the same for both, are excluded, so
the ratio is not diluted), its CPU time (less disturbed by a busy machine; shown
as a ratio for information), and the child's own peak RSS (ru_maxrss). Each is
repeated --repeat times (ours and plain interleaved, to share the noise); the
table shows medians of time and the largest peak. The slope lines show the
cost of one more version between consecutive sizes: a linear build has about
the same slope at every size, a quadratic one a growing slope.

Targets: ours <= 1.15 x plain at every size, and linear growth (the slope
between the two largest sizes at most 1.5 x the slope before it, and
time(max)/time(prev) <= max/prev). The exit status is 1 if a target is missed.

    .venv/bin/python bench/site_build.py [--sizes 1,10,50,200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The project's languages (mkdocs.yml): the bench builds every one of them.
LANGS = tuple(
    entry["locale"]
    for plugin in yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["plugins"]
    if isinstance(plugin, dict) and "i18n" in plugin
    for entry in plugin["i18n"]["languages"]
)
BUILD_DATE = dt.date(2026, 12, 1)
RATIO_TARGET, SLOPE_TOLERANCE = 1.15, 1.5
SUMMARY = {
    "lv": "Veiktspējas testa versija {id}: mainīti daži vārdi.",
    "en": "Benchmark version {id}: a few words changed.",
    "ru": "Версия {id} для замера: изменено несколько слов.",
}
CHANGES_TITLE = {"lv": "Izmaiņas versijā {id}", "en": "Changes in version {id}",
                 "ru": "Изменения в версии {id}"}


def body_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.split("\n---\n", 1)[1]  # drop the front matter


def evolve(body: str, n: int, seed: int) -> list[str]:
    """n texts: the real one, then each changes three words of the one before."""
    rng = random.Random(seed)  # noqa: S311 - reproducible edits, not security
    lines = body.split("\n")
    slots = [
        (i, j)
        for i, line in enumerate(lines)
        if line.strip() and not line.startswith("#")
        for j, word in enumerate(line.split(" "))
        if word.isalpha() and len(word) >= 4
    ]
    vocabulary = sorted({lines[i].split(" ")[j] for i, j in slots})
    texts = [body]
    for _ in range(n - 1):
        for i, j in rng.sample(slots, 3):
            words = lines[i].split(" ")
            words[j] = rng.choice([w for w in vocabulary if w != words[j]])
            lines[i] = " ".join(words)
        texts.append("\n".join(lines))
    return texts


def write_tree(dest: Path, n: int, kind: str, baseline_changes: str) -> None:
    """A project with n versions per language, for `ours` or the `plain` baseline."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    if kind == "ours":
        shutil.copytree(
            ROOT / "site_config", dest / "site_config", ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        config.pop("hooks", None)
        # Without the generator's plugin (its hooks and theme overrides).
        config["plugins"] = [p for p in config["plugins"] if p != "policy-site"]
        config["theme"].pop("custom_dir", None)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    ids = [f"1.{i}" for i in range(n)]
    for lang in LANGS:
        folder = dest / "content" / lang
        (folder / "versions").mkdir(parents=True)
        shutil.copy2(ROOT / "content" / lang / "versions" / "index.md", folder / "versions")
        bodies = evolve(body_of(ROOT / "content" / lang / "index.md"), n, seed=len(lang))
        for i, (vid, body) in enumerate(zip(ids, bodies, strict=True)):
            effective = BUILD_DATE - dt.timedelta(weeks=n - i)
            summary = json.dumps(SUMMARY[lang].format(id=vid), ensure_ascii=False)
            text = f'---\nversion: "{vid}"\neffective: {effective}\nsummary: {summary}\n---\n{body}'
            newest = i == n - 1
            if not newest or kind == "plain":  # plain: the archived page ours generates
                (folder / "versions" / f"{vid}.md").write_text(text, "utf-8")
            if newest:
                (folder / "index.md").write_text(text, "utf-8")
            if kind == "plain" and i > 0:
                both = bodies[i - 1] + "\n\n" + body if baseline_changes == "both" else body
                changes = folder / "versions" / vid / "changes.md"
                changes.parent.mkdir()
                changes.write_text(f"# {CHANGES_TITLE[lang].format(id=vid)}\n\n{both}", "utf-8")


def child(kind: str, root: Path, site_dir: Path) -> None:
    """Run in a fresh process: one build; print its time and this process's peak RSS."""
    import logging

    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from site_config.build_site import build_site

    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    start, cpu_start = time.perf_counter(), time.process_time()
    if kind == "ours":
        build_site(root, site_dir, BUILD_DATE)
    else:
        config_file = str(root / "mkdocs.yml")
        build(load_config(config_file=config_file, strict=True, site_dir=str(site_dir)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak_kib / 1024}))


def run_build(kind: str, root: Path) -> dict[str, float]:
    site_dir = root / "site"
    shutil.rmtree(site_dir, ignore_errors=True)
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(root), str(site_dir)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{kind} build of {root} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    pages = list(site_dir.rglob("*.html"))
    result["pages"] = len(pages)
    if kind == "ours":  # every comparison page must show a real difference
        changes = [p for p in pages if p.parent.name == "changes"]
        assert all("<ins>" in p.read_text("utf-8") for p in changes), "a comparison without diff"
    return result


def slopes(sizes: list[int], times: list[float]) -> list[float]:
    """Seconds per added version between consecutive sizes."""
    pairs = zip(itertools.pairwise(sizes), itertools.pairwise(times), strict=True)
    return [(t2 - t1) / (n2 - n1) for (n1, n2), (t1, t2) in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50,200", help="numbers of versions")
    parser.add_argument("--repeat", type=int, default=3, help="builds per size and kind")
    parser.add_argument(
        "--baseline-changes",
        choices=("new", "both"),
        default="new",
        help="baseline changes.md: the new text, or old + new concatenated",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # KIND ROOT SITE_DIR
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]), Path(args.child[2]))
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(
        f"Site build benchmark: {len(LANGS)} languages, repeat {args.repeat}, build date "
        f"{BUILD_DATE}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(
        "ours : our mkdocs.yml + hooks + overrides (adds the newest archived page, N-1 word-diff"
        " comparison pages, history table, versions.json, feed.xml per language)"
    )
    what = "the new text" if args.baseline_changes == "new" else "old + new text concatenated"
    print(
        "plain: material + i18n, no hooks/custom_dir; same Markdown plus the newest archived "
        f"page and N-1 changes.md pages ({what})"
    )
    print(
        "s = wall time of load_config + build in a fresh process (median); cpu = its CPU "
        "time (median, less sensitive to a busy machine); MiB = child ru_maxrss (max)\n"
    )
    header = (
        f"{'N':>5} {'pages':>9} {'ours s':>7} {'plain s':>7} {'ratio':>6} {'cpu ratio':>9} "
        f"{'ours MiB':>8} {'plain MiB':>9}"
    )
    print(header, "-" * len(header), sep="\n", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        for n in sizes:
            roots = {kind: Path(tmp) / f"{n}-{kind}" for kind in ("ours", "plain")}
            for kind, root in roots.items():
                write_tree(root, n, kind, args.baseline_changes)
            runs = {"ours": [], "plain": []}
            for _ in range(args.repeat):
                for kind, root in roots.items():
                    runs[kind].append(run_build(kind, root))
            row = {"n": n}
            for kind, results in runs.items():
                row[kind] = statistics.median(r["seconds"] for r in results)
                row[kind + "_cpu"] = statistics.median(r["cpu"] for r in results)
                row[kind + "_mib"] = max(r["peak_mib"] for r in results)
                row[kind + "_pages"] = results[0]["pages"]
            row["ratio"] = row["ours"] / row["plain"]
            row["cpu_ratio"] = row["ours_cpu"] / row["plain_cpu"]
            rows.append(row)
            pages = f"{row['ours_pages']}/{row['plain_pages']}"
            print(
                f"{n:>5} {pages:>9} {row['ours']:>7.2f} {row['plain']:>7.2f} {row['ratio']:>6.2f}"
                f" {row['cpu_ratio']:>9.2f} {row['ours_mib']:>8.1f} {row['plain_mib']:>9.1f}",
                flush=True,
            )
            for root in roots.values():
                shutil.rmtree(root)
    print("(pages = HTML files written, ours/plain)\n")
    ours, plain = [r["ours"] for r in rows], [r["plain"] for r in rows]
    ours_slopes, plain_slopes = slopes(sizes, ours), slopes(sizes, plain)
    for i, (n1, n2) in enumerate(itertools.pairwise(sizes)):
        print(
            f"slope {n1:>3} -> {n2:>3}: ours {ours_slopes[i] * 1000:6.1f} ms/version, plain "
            f"{plain_slopes[i] * 1000:6.1f} ms/version; ours time x{ours[i + 1] / ours[i]:.2f}"
            f" for versions x{n2 / n1:.2f}"
        )
    worst = max(rows, key=lambda r: r["ratio"])
    ratio_ok = worst["ratio"] <= RATIO_TARGET
    print(
        f"\n{'PASS' if ratio_ok else 'FAIL'}: ours <= {RATIO_TARGET}x plain "
        f"(wall time; worst {worst['ratio']:.2f}x at N={worst['n']}; by CPU time worst "
        f"{max(r['cpu_ratio'] for r in rows):.2f}x)"
    )
    if len(sizes) < 2:
        print("SKIP: linear growth needs at least two sizes")
        sys.exit(0 if ratio_ok else 1)
    growth_ok = ours[-1] / ours[-2] <= sizes[-1] / sizes[-2]
    detail = f"time x{ours[-1] / ours[-2]:.2f} for versions x{sizes[-1] / sizes[-2]:.2f}"
    if len(sizes) >= 3:
        growth_ok = growth_ok and ours_slopes[-1] <= SLOPE_TOLERANCE * ours_slopes[-2]
        last, before = ours_slopes[-1] * 1000, ours_slopes[-2] * 1000
        detail += f"; slope {last:.1f} vs {before:.1f} ms/version, limit x{SLOPE_TOLERANCE}"
    print(f"{'PASS' if growth_ok else 'FAIL'}: linear growth ({detail})")
    sys.exit(0 if ratio_ok and growth_ok else 1)


if __name__ == "__main__":
    main()
