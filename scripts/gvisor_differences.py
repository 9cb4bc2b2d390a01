#!/usr/bin/env python3
"""Distinct differences between gVisor and the Linux model, for scripts/gvisor.sh.

  gvisor_differences.py pick DIR LIMIT
      inside the sandbox, after `run --json DIR/report.json --save-failures DIR/failures`:
      writes DIR/pick/<n>.json (a corpus file) for each distinct difference of the report
      that no shrunk file in DIR/failures shows yet, at most LIMIT, for `minimize`.
  gvisor_differences.py table OUT VERSION...
      prints differences.md: one row per distinct difference, a column group per version.

A distinct difference is the violated invariant with the detail of its first violation, numbers
(inodes, pids, bits) left out; an errno difference is the invariant, the model's result and rule,
and the kernel's result.
"""

import glob
import json
import os
import re
import sys


def normalize(invariant, detail):
    d = detail.split("; ")[0]
    d = re.sub(r"^step \d+: ", "", d)
    d = re.sub(r"0x[0-9a-f]+", "0x…", d)
    d = re.sub(r"\b\d+\b", "N", d)
    return f"{invariant}: {d}"


def step_kind(case, step):
    """'clone3 ' when the violation is at a clone3 step, else '' (unshare and the rest)."""
    try:
        s = case["steps"][step]
    except (KeyError, IndexError, TypeError):
        return ""
    return "clone3 " if isinstance(s, dict) and "clone3" in s else ""


def report_classes(report):
    """class key -> (count, first failure)"""
    out = {}
    for f in report.get("failures", []):
        for v in f.get("violations", [])[:1]:
            key = step_kind(f.get("case"), v.get("step")) + normalize(v["invariant"], v.get("detail", ""))
            n, first = out.get(key, (0, f))
            out[key] = (n + 1, first)
    return out


def shrunk_files(d):
    files = {}
    for path in sorted(glob.glob(os.path.join(d, "failures", "*.json"))):
        try:
            data = json.load(open(path))
        except (OSError, ValueError):
            continue
        inv, detail, steps = None, "", []
        for c in data.get("comments", []):
            m = re.match(r"Violated invariant ([a-z0-9-]+): (.*)", c)
            if m and inv is None:
                inv, detail = m.group(1), m.group(2)
            m = re.match(r"\s*step (\d+): (.*): kernel returned (\S+); the model predicts (.*)", c)
            if m:
                steps.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
        if inv is None:
            continue
        m = re.match(r"step (\d+): ", detail)
        first = int(m.group(1)) if m else (steps[0][0] if steps else None)
        kind = step_kind(data.get("case"), first) if first is not None else ""
        files[kind + normalize(inv, detail)] = {"path": path, "data": data, "detail": detail, "steps": steps}
    return files


def pick(d, limit):
    report = json.load(open(os.path.join(d, "report.json")))
    have = shrunk_files(d)
    os.makedirs(os.path.join(d, "pick"), exist_ok=True)
    n = 0
    for key, (_count, first) in sorted(report_classes(report).items(), key=lambda kv: -kv[1][0]):
        if key in have or n >= limit:
            continue
        inv = first["violations"][0]["invariant"]
        name = f"{inv}-pick{n:02d}"
        with open(os.path.join(d, "pick", name + ".json"), "w") as fh:
            json.dump({"format": 1, "title": f"gVisor difference: {key}"[:200], "case": first["case"]}, fh, indent=2)
        with open(os.path.join(d, "pick", name + ".class"), "w") as fh:
            fh.write(key)
        n += 1
    print(n)


def found_cases(d):
    """class key -> (pick file, case, first violation detail) for the cases as found."""
    out = {}
    try:
        report = json.load(open(os.path.join(d, "report.json")))
    except (OSError, ValueError):
        return out
    classes = report_classes(report)
    for path in sorted(glob.glob(os.path.join(d, "pick", "*.class"))):
        key = open(path).read()
        if key in classes:
            first = classes[key][1]
            out[key] = (path[: -len(".class")] + ".json", first["case"], first["violations"][0].get("detail", ""))
    return out


def reproducer_cell(d, rc):
    if not os.path.exists(rc):
        return "-"
    st = ""
    try:
        st = open(rc[: -len(".c")] + ".status").read().strip()
    except OSError:
        pass
    return f"`{os.path.relpath(rc, os.path.dirname(d))}` (exit {st})"


def case_text(case):
    return json.dumps(case, separators=(",", ":"))


def cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def summary(d):
    try:
        r = json.load(open(os.path.join(d, "report.json")))
    except (OSError, ValueError):
        return None
    t = r.get("tally", {})
    return r, t


def table(out, versions):
    per = {}
    for v in versions:
        d = os.path.join(out, v)
        try:
            report = json.load(open(os.path.join(d, "report.json")))
        except (OSError, ValueError):
            report = None
        classes = report_classes(report) if report else {}
        files = shrunk_files(d)
        per[v] = (report, classes, files, d)
    print("# gVisor's unshare against the Linux model\n")
    print("Written by `scripts/gvisor.sh`. One row per distinct difference: the violated invariant and its")
    print("detail (numbers left out), the minimal case (shrunk on gVisor itself), Linux's result (the model's")
    print("prediction), gVisor's result, and the C reproducer (`unshare-fuzz repro FILE > x.c`; its exit status")
    print("under runsc: 1 = the difference shows, 0 = not, 2 = could not run there).\n")
    for v in versions:
        report, classes, files, d = per[v]
        ver = ""
        try:
            ver = open(os.path.join(d, "runsc-version.txt")).read().strip()
        except OSError:
            pass
        if report is None:
            print(f"* **{v}** ({ver}): no report (could not be set up)")
            continue
        env = report.get("environment", {})
        viol = sum(c for c, _ in classes.values())
        print(f"* **{v}** ({ver}): {report.get('verdict')}; exit {report.get('exit_status')}; model "
              f"{report.get('profile')}; {len(report.get('failures', []))} failing cases, {len(classes)} distinct "
              f"differences; kernel claims {env.get('kernel_release')}")
        for s in env.get("sandbox_violations", []):
            print(f"  * outer sandbox: {cell(s)[:400]}")
        del viol
    print()
    keys = []
    for v in versions:
        for k, (c, _) in sorted(per[v][1].items(), key=lambda kv: -kv[1][0]):
            if k not in keys:
                keys.append(k)
        for k in per[v][2]:
            if k not in keys:
                keys.append(k)
    head = ["difference (invariant: detail)"]
    for v in versions:
        head += [f"{v}: cases", f"{v}: minimal case", f"{v}: Linux", f"{v}: gVisor", f"{v}: reproducer"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for k in keys:
        row = [cell(k)]
        for v in versions:
            _report, classes, files, d = per[v]
            count = classes.get(k, (0, None))[0]
            f = files.get(k)
            if f is None:
                found = found_cases(d).get(k)
                if found is None or not count:
                    row += [str(count), "(not shrunk)" if count else "-", "-", "-", "-"]
                    continue
                path, case, detail = found
                base = os.path.splitext(os.path.basename(path))[0]
                rc = os.path.join(d, "reproducers", "found-" + base + ".c")
                repro = reproducer_cell(d, rc)
                row += [str(count), f"`{cell(case_text(case))}` (as found: shrinking it led to another difference; "
                        f"`{os.path.relpath(path, os.path.dirname(d))}`)", "see detail", cell(detail), repro]
                continue
            steps = f["steps"]
            linux = "; ".join(f"step {i}: {want}" for i, _s, _got, want in steps) or f["detail"]
            gv = "; ".join(f"step {i}: {got}" for i, _s, got, _want in steps) or f["detail"]
            base = os.path.splitext(os.path.basename(f["path"]))[0]
            rc = os.path.join(d, "reproducers", base + ".c")
            st = ""
            try:
                st = open(os.path.join(d, "reproducers", base + ".status")).read().strip()
            except OSError:
                pass
            repro = f"`{os.path.relpath(rc, os.path.dirname(d))}` (exit {st})" if os.path.exists(rc) else "-"
            row += [str(count), f"`{cell(case_text(f['data']['case']))}` (`{os.path.relpath(f['path'], os.path.dirname(d))}`)",
                    cell(linux), cell(gv), repro]
        print("| " + " | ".join(row) + " |")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "pick":
        pick(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
