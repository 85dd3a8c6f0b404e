"""Results of python-pkcs11's suite runs, for softhsm-compat/python-pkcs11/run.

  summarize.py run TAG RUN GATING RC SECONDS SUITE_DIR JUNIT.xml PYTEST.log EXPECTED RESULTS.tsv
      reads one pytest run's JUnit XML (of the suite in SUITE_DIR), appends a row per test to RESULTS.tsv and prints the
      run's summary line, its failures and its skip reasons;
  summarize.py total RESULTS.tsv EXPECTED
      prints the per-run counts and the closing `N passed, N failed, N skipped` line; exits 1
      when a gating (ferrohsm) run has a failure that EXPECTED does not list.

RESULTS.tsv columns: tag, run, gating (1/0), PASS|FAIL|SKIP, test id, reason.
A test id is pytest's node id, e.g. tests/test_rsa.py::RSATests::test_sign_pss.
"""

import collections
import os
import re
import sys
import xml.etree.ElementTree as ET


def one_line(text, limit=220):
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_expected(path):
    """{test id: reason} from `ID  # reason` lines; blank and `#` lines are ignored."""
    expected = {}
    if not os.path.exists(path):
        return expected
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, reason = line.partition("#")
            expected[test_id.strip()] = reason.strip()
    return expected


def mechanism_names(message):
    """The suite's `Requires 4227, 4164` (mechanism numbers) with the CKM_ names."""
    match = re.fullmatch(r"Requires ([0-9, ]+)", message)
    if not match:
        return message
    try:
        from pkcs11 import Mechanism
    except ImportError:
        return message
    names = []
    for number in sorted(int(n) for n in match.group(1).split(",") if n.strip()):
        try:
            names.append("CKM_" + Mechanism(number).name)
        except ValueError:
            names.append(hex(number))
    return "Requires " + ", ".join(names)


def node_id(case, suite):
    classname = case.get("classname", "")
    name = case.get("name", "")
    if not classname:
        return name
    parts = classname.split(".")
    # tests.test_rsa.RSATests -> tests/test_rsa.py::RSATests; a module-level function has no
    # class part (the last component then starts with "test_").
    for i in range(len(parts), 0, -1):
        if os.path.exists(os.path.join(suite, *parts[:i]) + ".py"):
            return "::".join(["/".join(parts[:i]) + ".py", *parts[i:], name])
    return f"{classname}::{name}"


def outcomes(xml_path, suite):
    """[(status, id, reason)] for every test case in the JUnit XML."""
    rows = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        test_id = node_id(case, suite)
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            kind = "error" if failure.tag == "error" else ""
            message = failure.get("message") or (failure.text or "").strip().splitlines()[-1:]
            if isinstance(message, list):
                message = message[0] if message else ""
            rows.append(("FAIL", test_id, one_line((kind + ": " if kind else "") + message)))
        elif skipped is not None:
            message = mechanism_names(skipped.get("message", "").strip())
            if skipped.get("type") == "pytest.xfail":
                message = "expected failure (suite's FIXME/xfail): " + message
            rows.append(("SKIP", test_id, one_line(message)))
        else:
            rows.append(("PASS", test_id, ""))
    return rows


def count(rows):
    c = collections.Counter(r[0] for r in rows)
    return c["PASS"], c["FAIL"], c["SKIP"]


def cmd_run(tag, run, gating, rc, seconds, suite, xml_path, log_path, expected_path, results_path):
    rc, gating = int(rc), gating == "1"
    expected = load_expected(expected_path)
    rows = []
    if os.path.exists(xml_path):
        rows = outcomes(xml_path, suite)
    if rc not in (0, 1) or not rows:
        tail = ""
        if os.path.exists(log_path):
            with open(log_path, encoding="utf-8", errors="replace") as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
            tail = lines[-1] if lines else ""
        why = {124: "timed out", 137: "killed after the time-out"}.get(rc, f"exited with {rc}")
        rows.append(("FAIL", "(suite)", one_line(f"pytest {why}; last line: {tail}")))
    with open(results_path, "a", encoding="utf-8") as f:
        for status, test_id, reason in rows:
            f.write(f"{tag}\t{run}\t{int(gating)}\t{status}\t{test_id}\t{reason}\n")

    passed, failed, skipped = count(rows)
    new = [r for r in rows if r[0] == "FAIL" and r[1] not in expected]
    note = f"{seconds}s"
    if failed:
        note += f"; {failed - len(new)} listed in expected-failures.txt, {len(new)} not"
    print(f"-- {tag} {run}: {passed} passed, {failed} failed, {skipped} skipped ({note})")
    for status, test_id, reason in rows:
        if status == "FAIL":
            mark = "expected" if test_id in expected else ("NEW" if gating else "")
            print(f"   FAIL {test_id} -- {reason}" + (f" [{mark}]" if mark else ""))
    reasons = collections.Counter(r[2] for r in rows if r[0] == "SKIP")
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"   SKIP x{n} {reason}")


def cmd_total(results_path, expected_path):
    expected = load_expected(expected_path)
    rows = []
    with open(results_path, encoding="utf-8") as f:
        for line in f:
            tag, run, gating, status, test_id, reason = line.rstrip("\n").split("\t")[:6]
            rows.append((tag, run, gating == "1", status, test_id, reason))
    runs = collections.OrderedDict()
    for r in rows:
        runs.setdefault((r[0], r[1]), []).append((r[3], r[4], r[5]))
    for (tag, run), rs in runs.items():
        passed, failed, skipped = count(rs)
        print(f"python-pkcs11 on {tag} ({run}): {passed} passed, {failed} failed, {skipped} skipped")

    gating_rows = [r for r in rows if r[2]]
    counted = gating_rows if gating_rows else rows
    new = sorted({r[4] for r in gating_rows if r[3] == "FAIL" and r[4] not in expected})
    if gating_rows:
        failing = {r[4] for r in gating_rows if r[3] == "FAIL"}
        for test_id in expected:
            if test_id not in failing:
                print(f"NOTE: {test_id} is in expected-failures.txt but did not fail: remove it")
    for test_id in new:
        print(f"NEW FAILURE (not in expected-failures.txt): {test_id}")
    passed, failed, skipped = count([(r[3], r[4], r[5]) for r in counted])
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if new else 0


def main(argv):
    if len(argv) == 11 and argv[0] == "run":
        cmd_run(*argv[1:])
        return 0
    if len(argv) == 3 and argv[0] == "total":
        return cmd_total(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
