"""Importing Junction keeps jsonschema's costly optional grammar out, and validation works."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import junction.app
assert "jsonschema" not in sys.modules, "the core imported jsonschema before an event failed"
import jsonschema
import nbformat
assert sys.modules.get("rfc3987_syntax") is None, "the grammar module was imported"
assert "lark" not in sys.modules, "lark was imported"
assert "arrow" not in sys.modules, "isoduration brought arrow"
checker = jsonschema.FormatChecker()
validator = jsonschema.Draft7Validator({"type": "string", "format": "date"}, format_checker=checker)
assert not validator.is_valid("not a date")
assert validator.is_valid("2026-12-07")
nbformat.validate(nbformat.v4.new_notebook())
print("ok")
"""


def test_importing_junction_skips_the_iri_grammar_and_validation_still_works() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
