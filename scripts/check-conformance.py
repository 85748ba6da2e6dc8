#!/usr/bin/env python3
"""Checks docs/conformance.md against the test suite: every test the table names must exist
(as `file::test`, where `file` is the end of a `.rs` path under crates/ without `.rs`), and
every test named after a normative statement (`fn mqtt_x_y_z_n_...`, four numbers) must
appear in the table. Prints what is wrong and exits 1, or prints a coverage summary and exits 0.

    python3 scripts/check-conformance.py
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "conformance.md"

TEST_FN = re.compile(r"#\[(?:tokio::)?test[^\]]*\]\s*(?:async\s+)?fn\s+(\w+)")
REFERENCE = re.compile(r"`([\w/]+)::(\w+)`")
# A test named after a statement: mqtt_ and the four numbers of an id, like mqtt_3_1_2_4_...
# (mqtt_3_1_... alone names the protocol version 3.1, not a statement).
STATEMENT_TEST = re.compile(r"^mqtt_\d+_\d+_\d+_\d+_")
ROW = re.compile(r"^\| (MQTT-[\d.]+-\d+) \|")


def tests_by_file():
    """{path without .rs, relative to crates/: set of test function names}."""
    found = {}
    for path in (ROOT / "crates").rglob("*.rs"):
        if "target" in path.parts:
            continue
        names = set(TEST_FN.findall(path.read_text(encoding="utf-8")))
        if names:
            found[path.relative_to(ROOT / "crates").with_suffix("").as_posix()] = names
    return found


def main():
    tests = tests_by_file()
    text = TABLE.read_text(encoding="utf-8")
    problems = []
    referenced = set()
    for file_hint, name in REFERENCE.findall(text):
        # A test crate split into a directory (tests/NAME/main.rs and its modules) is named
        # by the directory.
        files = [f for f in tests if f == file_hint or f.endswith("/" + file_hint)
                 or f"/tests/{file_hint}/" in f]
        if not any(name in tests[f] for f in files):
            problems.append(f"{TABLE.name} names `{file_hint}::{name}`, which does not exist")
        referenced.add(name)
    for file, names in sorted(tests.items()):
        for name in sorted(names):
            if STATEMENT_TEST.match(name) and name not in referenced:
                problems.append(f"crates/{file}.rs::{name} is named after a statement but "
                                f"is not in {TABLE.name}")
    rows = [line for line in text.splitlines() if ROW.match(line)]
    uncovered = [ROW.match(line).group(1) for line in rows
                 if "not covered" in line.split("|")[-2] and "::" not in line.split("|")[-2]]
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{len(rows)} statements listed, {len(referenced)} tests referenced, "
          f"{len(uncovered)} without any test: {', '.join(uncovered) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
