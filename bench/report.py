"""Writes the benchmark figures in README.md and bench/README.md from bench/results/*.json.

Every figure in those files sits between `<!-- bench:begin NAME -->` and `<!-- bench:end NAME -->` and is
written here from the results the scripts wrote; nothing between the markers is typed by hand.

    .venv/bin/python bench/report.py            rewrite the marked regions
    .venv/bin/python bench/report.py --check    exit 1 (and show the difference) when a region is not
                                                what the results give, or a marker is missing
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report_tables as tables  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FILES = {ROOT / "README.md": ("summary",),
         ROOT / "bench" / "README.md": ("machine", "summary", "p0", "p1", "p2a", "p2b", "p3", "p4", "p5")}
REGION = re.compile(r"(<!-- bench:begin (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- bench:end (?P=name) -->)", re.S)


def load(results: Path) -> dict:
    out = {}
    for path in sorted(results.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: {exc}")
    return out


def regions(results: dict) -> dict[str, str]:
    return {"machine": tables.machine(results), "summary": tables.summary(results), "p0": tables.p0(results),
            "p1": tables.p1(results), "p2a": tables.p2a(results), "p2b": tables.p2b(results),
            "p3": tables.p3(results), "p4": tables.p4(results), "p5": tables.p5(results)}


def render(text: str, wanted: tuple, bodies: dict[str, str], where: str) -> str:
    found = [m.group("name") for m in REGION.finditer(text)]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise SystemExit(f"{where}: no region for {', '.join(missing)} (mark it with <!-- bench:begin NAME --> "
                         f"... <!-- bench:end NAME -->)")

    def body(match):
        name = match.group("name")
        if name not in bodies:
            raise SystemExit(f"{where}: unknown region {name}")
        return match.group(1) + bodies[name].rstrip("\n") + "\n" + match.group(4)
    return REGION.sub(body, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a region differs from the results")
    parser.add_argument("--results", default=str(RESULTS), help="the results directory (default bench/results)")
    parser.add_argument("--root", default=str(ROOT), help="where README.md and bench/README.md are (default: here)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    bodies = regions(load(Path(args.results)))
    stale = []
    for path, wanted in FILES.items():
        path = root / path.relative_to(ROOT)
        where = str(path.relative_to(root))
        old = path.read_text(encoding="utf-8")
        new = render(old, wanted, bodies, where)
        if new == old:
            continue
        if args.check:
            stale.append(where)
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"{where} (now)", f"{where} (from the results)"))
        else:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {where}")
    if stale:
        print(f"\n{', '.join(stale)}: figures differ from bench/results; run .venv/bin/python bench/report.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
