"""``make bench``: run every benchmark part and write docs/benchmarks.md.

Each part is a module here with ``run(quick: bool) -> str`` returning a Markdown section
that includes the command reproducing it. ``BENCH_PARTS=serving,drift`` picks parts;
``BENCH_QUICK=1`` runs the small sizes only.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

PARTS = ("serving", "drift")
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    chosen = [p for p in os.environ.get("BENCH_PARTS", ",".join(PARTS)).split(",") if p]
    quick = os.environ.get("BENCH_QUICK") == "1"
    sections = []
    for part in chosen:
        print(f"bench: {part} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{part}")
        sections.append(module.run(quick=quick))
    header = (
        f"# Benchmarks\n\nMeasured {datetime.now(UTC):%Y-%m-%d} on {machine()}.\n"
        "Reproduce everything with `make bench`; each section names its own command.\n"
    )
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(header + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
