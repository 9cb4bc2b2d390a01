#!/usr/bin/env python3
"""Summarise KTAP v1 reports from several kernels as one kernel x test table.

usage: scripts/ktap-table.py [--compact] FILE.ktap [FILE.ktap ...]

Each file is named after its kernel (``6.12.117.ktap`` -> column ``6.12.117``).
Only top-level result lines count as tests:

    ok N name                 -> held
    not ok N name             -> VIOLATED
    ok N name # SKIP reason   -> skipped   (also "not ok ... # SKIP")

Indented lines (nested subtests) are counted per top-level test but not shown.
Anything else - diagnostics, serial noise, partial lines - is ignored, so the
tool is safe to run on raw serial captures. The line ``# guest-exit: STATUS``
written by the guest init is reported per kernel; a file without it is marked
incomplete (the kernel did not finish).

Exit status: 0 if every file was read, is complete, and has no VIOLATED test;
1 if some test is VIOLATED or some file is incomplete or has no results; 2 on
usage errors or unreadable files.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

HELD, VIOLATED, SKIPPED, MISSING = "held", "VIOLATED", "skipped", "-"

# Control characters other than tab, which serial noise tends to produce.
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_RESULT = re.compile(
    r"^(?P<indent>[ \t]*)(?P<not>not )?ok\s+(?P<num>\d+)\b"
    r"(?:\s*-)?(?P<name>[^#]*?)\s*(?:#\s*(?P<directive>.*))?$"
)
_PLAN = re.compile(r"^\s*1\.\.(\d+)\s*(?:#.*)?$")
_EXIT = re.compile(r"#\s*guest-exit:\s*(?P<status>.*?)\s*$")
_BAIL = re.compile(r"^\s*Bail out!", re.IGNORECASE)
# Diagnostics of unshare-fuzz reports: the model, the probed facts and the known bugs.
_MODEL = re.compile(r"^#\s*unshare-fuzz .*\bmodel (?P<model>[^,\s]+)")
_FACT = re.compile(r"^#\s*fact:\s*(?P<name>[^=]+?)\s*=\s*(?P<value>[^;]*);\s*(?P<rule>.*)$")
_KNOWN = re.compile(r"^#\s*KNOWN BUG (?P<id>\S+): explains (?P<n>\d+) of (?P<m>\d+) failed cases")


@dataclass
class Test:
    """One top-level KTAP result."""

    number: int
    name: str
    status: str
    reason: str = ""
    subtests: int = 0


@dataclass
class Report:
    """Everything read from one kernel's KTAP file."""

    kernel: str
    tests: dict[str, Test] = field(default_factory=dict)
    plan: int | None = None
    version_seen: bool = False
    guest_exit: str | None = None
    bailed_out: bool = False
    ignored_lines: int = 0
    error: str | None = None
    model: str | None = None
    facts: dict[str, tuple[str, str]] = field(default_factory=dict)
    known_bugs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tests.values() if t.status == status)


def parse(path: str) -> Report:
    """Parses one KTAP file, tolerating noise."""
    kernel = os.path.basename(path)
    if kernel.endswith(".ktap"):
        kernel = kernel[: -len(".ktap")]
    rep = Report(kernel=kernel)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        rep.error = str(e)
        return rep
    text = raw.decode("utf-8", errors="replace")
    pending_subtests = 0
    for line in text.splitlines():
        line = _CTRL.sub("", line).rstrip()
        if not line:
            continue
        m_exit = _EXIT.search(line)
        if m_exit:
            rep.guest_exit = m_exit.group("status")
            continue
        if line.lstrip().startswith("KTAP version") or line.lstrip().startswith("TAP version"):
            if not line[0].isspace():
                rep.version_seen = True
            continue
        if line.lstrip().startswith("#"):
            if not line[0].isspace():
                m_model, m_fact, m_known = _MODEL.match(line), _FACT.match(line), _KNOWN.match(line)
                if m_model:
                    rep.model = m_model.group("model")
                elif m_fact:
                    rep.facts[m_fact.group("name")] = (m_fact.group("value"), m_fact.group("rule"))
                elif m_known:
                    rep.known_bugs[m_known.group("id")] = (int(m_known.group("n")), int(m_known.group("m")))
            continue  # diagnostic
        if _BAIL.match(line):
            rep.bailed_out = True
            continue
        m_plan = _PLAN.match(line)
        if m_plan:
            if not line[0].isspace() and rep.plan is None:
                rep.plan = int(m_plan.group(1))
            continue
        m = _RESULT.match(line)
        if not m:
            rep.ignored_lines += 1
            continue
        if m.group("indent"):
            pending_subtests += 1
            continue
        directive = (m.group("directive") or "").strip()
        word, _, reason = directive.partition(" ")
        if word.upper() == "SKIP":
            status = SKIPPED
        elif m.group("not"):
            status = VIOLATED
        else:
            status = HELD
        number = int(m.group("num"))
        name = m.group("name").strip() or f"#{number}"
        key, n = name, 2
        while key in rep.tests:  # repeated names stay distinct
            key, n = f"{name} [{n}]", n + 1
        rep.tests[key] = Test(number, key, status, reason.strip(), pending_subtests)
        pending_subtests = 0
    return rep


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [fmt(headers), fmt(["-" * w for w in widths])]
    out.extend(fmt(r) for r in rows)
    return "\n".join(out)


def main(argv: list[str]) -> int:
    compact = False
    files = []
    for arg in argv:
        if arg in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if arg == "--compact":
            compact = True
        elif arg.startswith("-") and arg != "-":
            print(f"ktap-table: unknown option {arg}", file=sys.stderr)
            return 2
        else:
            files.append(arg)
    if not files:
        print("usage: ktap-table.py [--compact] FILE.ktap [FILE.ktap ...]", file=sys.stderr)
        return 2

    reports = [parse(p) for p in files]
    kernels = [r.kernel for r in reports]

    # Per-kernel summary.
    rows = []
    for r in reports:
        if r.error:
            rows.append([r.kernel, "-", "-", "-", "-", "-", "-", f"unreadable: {r.error}"])
            continue
        notes = []
        if r.guest_exit is None:
            notes.append("INCOMPLETE (no # guest-exit)")
        if r.bailed_out:
            notes.append("bailed out")
        if not r.version_seen and r.tests:
            notes.append("no KTAP header")
        if r.plan is not None and r.plan != len(r.tests):
            notes.append(f"plan 1..{r.plan} but {len(r.tests)} results")
        if r.ignored_lines:
            notes.append(f"{r.ignored_lines} unparsed lines")
        subtests = sum(t.subtests for t in r.tests.values())
        rows.append([
            r.kernel,
            str(len(r.tests)),
            str(r.count(HELD)),
            str(r.count(VIOLATED)),
            str(r.count(SKIPPED)),
            str(subtests),
            r.guest_exit if r.guest_exit is not None else "-",
            "; ".join(notes),
        ])
    print("== per kernel ==")
    print(render_table(
        ["kernel", "tests", "held", "VIOLATED", "skipped", "subtests", "guest-exit", "notes"],
        rows,
    ))

    # Union of test names, in first-seen order.
    names: list[str] = []
    seen = set()
    for r in reports:
        for name in r.tests:
            if name not in seen:
                seen.add(name)
                names.append(name)

    def status_of(r: Report, name: str) -> str:
        t = r.tests.get(name)
        return t.status if t else MISSING

    print()
    print("== kernel x test ==" + (" (rows where every kernel held are hidden)" if compact else ""))
    table_rows = []
    for name in names:
        statuses = [status_of(r, name) for r in reports]
        if compact and all(s == HELD for s in statuses):
            continue
        table_rows.append([name] + statuses)
    if names:
        print(render_table(["test"] + kernels, table_rows) if table_rows else "(all held)")
    else:
        print("(no test results)")

    # Probed facts (unshare-fuzz reports): kernel x fact, and the model each kernel started from.
    fact_names: list[str] = []
    for r in reports:
        for name in r.facts:
            if name not in fact_names:
                fact_names.append(name)
    if fact_names:
        print()
        print("== probed facts (value; the model follows it) ==")
        rows = [["model (from the release)"] + [r.model or "-" for r in reports]]
        for name in fact_names:
            rows.append([name] + [r.facts.get(name, ("-", ""))[0] for r in reports])
        print(render_table(["fact"] + kernels, rows))
        switched = [f"  {r.kernel}: {name}: {rule}" for r in reports for name, (_, rule) in r.facts.items()
                    if "switched from" in rule]
        if switched:
            print("rules switched by a probed fact:")
            print("\n".join(switched))

    def explanation(r: Report, status: str) -> str:
        """Why kernel r differs: a known bug that explains every failed case, else a finding."""
        if status != VIOLATED:
            return ""
        for bug, (n, m) in r.known_bugs.items():
            if n == m:
                return f"known bug {bug} (all {m} failed cases)"
        return "FINDING"

    print()
    print("== differences between kernels ==")
    diffs = []
    findings = 0
    for name in names:
        per = {r.kernel: status_of(r, name) for r in reports if not r.error}
        if len(set(per.values())) > 1:
            parts = []
            for r in reports:
                if r.error:
                    continue
                why = explanation(r, per[r.kernel])
                findings += why == "FINDING"
                parts.append(f"{r.kernel}: {per[r.kernel]}" + (f" [{why}]" if why else ""))
            detail = ", ".join(parts)
            reasons = sorted({r.tests[name].reason for r in reports
                              if name in r.tests and r.tests[name].reason})
            if reasons:
                detail += "  (" + "; ".join(reasons) + ")"
            diffs.append(f"  {name}: {detail}")
    if len(reports) < 2:
        print("  (only one kernel)")
    elif diffs:
        print("\n".join(diffs))
        print(f"  ({findings} unexplained: FINDING)" if findings else "  (every difference is a known bug)")
    else:
        print("  none")
    if any(r.facts for r in reports):
        facts_differ = [n for n in fact_names if len({r.facts.get(n, ("-", ""))[0] for r in reports}) > 1]
        print(f"  probed facts that differ between kernels: {', '.join(facts_differ) if facts_differ else 'none'}"
              " (the model follows them, so they change no verdict)")

    if any(r.error for r in reports):
        return 2
    bad = any(r.count(VIOLATED) for r in reports) or any(
        r.guest_exit is None or not r.tests for r in reports
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
