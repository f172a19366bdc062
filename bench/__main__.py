"""``make bench``: run every benchmark part and write docs/benchmarks.md.

Each part is a module here with ``run(quick: bool) -> str`` returning a Markdown section
that includes the command reproducing it. ``BENCH_PARTS=serving,drift`` picks parts;
``BENCH_QUICK=1`` runs the small sizes only. A section's title is its part's name, ``_`` written as a
space (``## Inference log`` for ``inference_log``).
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

PARTS = ("serving", "drift", "inference_log")
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


def previous_sections() -> dict[str, str]:
    """The sections of the current docs/benchmarks.md by part name (``## Inference log`` -> ``inference_log``)."""
    if not OUTPUT.is_file():
        return {}
    sections: dict[str, str] = {}
    for chunk in OUTPUT.read_text(encoding="utf-8").split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip().lower().replace(" ", "_")
        sections[title] = "## " + chunk.rstrip("\n") + "\n"
    return sections


def main() -> None:
    chosen = [p for p in os.environ.get("BENCH_PARTS", ",".join(PARTS)).split(",") if p]
    quick = os.environ.get("BENCH_QUICK") == "1"
    sections = []
    for part in chosen:
        print(f"bench: {part} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{part}")
        sections.append(module.run(quick=quick))
    header = (
        f"# Benchmarks\n\nMeasured {datetime.now(UTC):%Y-%m-%d} on {machine()}"
        + ("." if set(chosen) >= set(PARTS) else f" ({', '.join(chosen)}; the other sections are from their last run).")
        + "\n"
        "Reproduce everything with `make bench`; each section names its own command.\n"
    )
    # Parts not run this time keep their section from the last run, in the usual order.
    kept = previous_sections()
    fresh = dict(zip(chosen, sections, strict=True))
    ordered = [fresh.get(part) or kept.get(part) for part in PARTS] + [fresh[p] for p in chosen if p not in PARTS]
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(header + "\n" + "\n".join(section for section in ordered if section), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
