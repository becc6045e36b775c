"""Answer files: time and peak memory to attach (seal) and to download (check, then decrypt
as a stream) a 50 MB file, against a plain copy and a plain read of the same bytes.

Each operation runs in a child process of its own, so that its peak resident memory
(getrusage ru_maxrss) is its own; `idle` is a child that only imports what the others
import, the floor every figure stands on. Medians of --repeat runs, in the same run as
the baselines; ratios are ours / baseline.

    .venv/bin/python bench/answer_files.py               # 50 MB, 5 runs
    .venv/bin/python bench/answer_files.py --mb 10 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "q6Rz3Yc1S2v9kJ0xWbT4pLmN8aE5uH7dF2gK1sQ0wXo"
OPERATIONS = ("idle", "copy", "attach", "read", "download")


def _settings(work: Path):  # type: ignore[no-untyped-def]
    from form_service.settings import load_settings

    return load_settings({"POLICY_VAR_DIR": str(work / "var"), "POLICY_FILES_KEY": KEY,
                          "POLICY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
                          "POLICY_ANSWER_FILE_MAX_MB": "1000"}, root=ROOT)


def child(operation: str, source: Path, work: Path) -> dict[str, float]:
    """One operation, once; its wall time and this process's peak memory."""
    from form_service import answer_files, sealed

    settings = _settings(work)
    started = time.perf_counter()
    if operation == "copy":
        target = work / "copy.bin"
        shutil.copyfile(source, target)
        with target.open("rb+") as out:
            os.fsync(out.fileno())
    elif operation == "attach":
        answer_files.seal_file(settings, source)
    elif operation == "read":
        for _ in sealed.read_chunks(source):
            pass
    elif operation == "download":
        stored = answer_files.seal_file(settings, source)
        started = time.perf_counter()  # only the download is timed
        info = answer_files.FileInfo(**vars(stored), id=1, created_at=None,  # type: ignore[arg-type]
                                     expires_at=None, deleted_at=None)  # type: ignore[arg-type]
        total = sum(len(chunk) for chunk in answer_files.stream(settings, info))
        assert total == source.stat().st_size
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "peak_mib": peak_kib / 1024}


def _run(operation: str, source: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-answers-") as work:
        out = subprocess.run([sys.executable, __file__, "--child", operation, str(source), work],
                             check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="file size in MB (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--child", nargs=3, metavar=("OP", "SOURCE", "WORK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        operation, source, work = args.child
        print(json.dumps(child(operation, Path(source), Path(work))))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-answer-source-") as folder:
        source = Path(folder) / "answer.zip"
        with source.open("wb") as out:
            # Random bytes behind a ZIP signature: an export that compresses no further.
            out.write(b"PK\x03\x04")
            for _ in range(args.mb):
                out.write(os.urandom(1_000_000))
        runs: dict[str, list[dict[str, float]]] = {op: [] for op in OPERATIONS}
        for _ in range(args.repeat):
            for operation in OPERATIONS:  # interleaved, so drift hits every row alike
                runs[operation].append(_run(operation, source))
    median = {op: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_mib")}
              for op, rs in runs.items()}
    print(f"{args.mb} MB file, median of {args.repeat} runs, each in its own process "
          f"({os.cpu_count()} cores)")
    print(f"{'operation':<10} {'seconds':>9} {'MB/s':>8} {'peak MiB':>9} {'over idle':>10}")
    for op in OPERATIONS:
        m = median[op]
        rate = f"{args.mb / m['seconds']:8.0f}" if op != "idle" else f"{'':>8}"
        print(f"{op:<10} {m['seconds']:9.3f} {rate} {m['peak_mib']:9.1f} "
              f"{m['peak_mib'] - median['idle']['peak_mib']:10.1f}")
    for ours, base in (("attach", "copy"), ("download", "read")):
        print(f"{ours} / {base}: time x{median[ours]['seconds'] / median[base]['seconds']:.2f}, "
              f"peak memory over idle {median[ours]['peak_mib'] - median['idle']['peak_mib']:.1f}"
              f" MiB vs {median[base]['peak_mib'] - median['idle']['peak_mib']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
