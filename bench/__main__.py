"""Run every benchmark section, print one table per section, save the rows as JSON."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

SECTIONS = ["kv", "auth", "cache", "ratelimit"]
RESULTS = Path(__file__).parent / "results"


def table(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def main(names: list[str]) -> None:
    results: dict[str, Any] = {"measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sections": {}}
    for name in names or SECTIONS:
        module = importlib.import_module(f"bench.{name}")
        rows = module.run()
        results["sections"][name] = rows
        print(f"\n## {name}: {(module.__doc__ or '').strip().splitlines()[0]}\n")
        print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nsaved {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
