"""Keeps optional imports that cost seconds and serve nothing in Junction out of the process.

jsonschema checks the ``iri`` and ``iri-reference`` formats with ``rfc3987_syntax`` when that is
installed (it comes with jupyter_events, which JupyterLab brings), and importing it compiles an
Earley grammar: about 2 s of CPU at every server start and every ``junction`` command. No schema
Junction validates uses those formats, so the import is turned off before anything imports
jsonschema; jsonschema then skips those two format checks, as it does when the package is
missing. ``isoduration`` (the ``duration`` format) goes the same way: it brings arrow and
dateutil, about 2.3 MB for a format Junction never checks (it passes no format checker).
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None blocks an import
sys.modules.setdefault("isoduration", None)  # type: ignore[arg-type]
