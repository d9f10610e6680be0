"""Run the benchmark sections, print a table for each (the summary last), save everything as JSON.

``python -m bench [section ...]``; each section is a module with ``run() -> list[dict]`` and may have
``prepare()`` (called for every chosen section before any runs) and ``notes() -> list[str]``.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# The sections that time nothing run first, while the layer builds in the background (layer.prepare).
SECTIONS = ["kv", "auth", "ratelimit", "layer", "cache", "functions", "cold", "cost", "summary"]
RESULTS = Path(__file__).parent / "results"


def table(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def host() -> dict[str, Any]:
    """What the numbers were measured on: times are only comparable on the same machine and load."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "loadAverage1m": round(os.getloadavg()[0], 2),
    }


def main(names: list[str]) -> None:
    modules = {name: importlib.import_module(f"bench.{name}") for name in names or SECTIONS}
    results: dict[str, Any] = {
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host(),
        "sections": {},
        "notes": {},
    }
    for module in modules.values():
        if hasattr(module, "prepare"):
            module.prepare()
    started = time.monotonic()
    for name, module in modules.items():
        rows = module.run()
        results["sections"][name] = rows
        print(f"\n## {name}: {(module.__doc__ or '').strip().splitlines()[0]}\n", flush=True)
        print(table(rows))
        if hasattr(module, "notes"):
            results["notes"][name] = module.notes()
            print("\n" + "\n".join(results["notes"][name]))
    results["seconds"] = round(time.monotonic() - started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nsaved {RESULTS / 'latest.json'} ({results['seconds']} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
