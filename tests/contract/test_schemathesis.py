"""Property-based tests of a live Junction server against its own spec and Jupyter Server's.

A real ``junction`` process (uvicorn on loopback, token auth, the ``full`` profile) serves a
temporary root holding a few files and a notebook. schemathesis reads the merged spec from
``GET /api/spec.yaml`` and, for every operation, sends generated requests (valid and
invalid) and checks the responses: no server error, documented status codes, content types,
headers and schemas, invalid input refused, valid input accepted.

The same server is then held to Jupyter Server's own ``api.yaml`` (Swagger 2.0, shipped in
the installed ``jupyter_server`` package) for the operations both servers have.

Examples per operation are few (the budget is about a minute on two cores); a failure names
the operation and prints a ``curl`` line that reproduces it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import jupyter_server
import pytest
import schemathesis
import yaml
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi import checks

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
EXAMPLES = 5
"""Generated cases per operation and phase (Jupyter Server's spec: fewer, it is a subset)."""
JUPYTER_EXAMPLES = 3

SKIPPED_OPERATIONS = {
    # Stops the server under test; tests/e2e/test_server.py covers it.
    ("POST", "/api/shutdown"),
}

# (method, path) -> checks that do not apply, each with the reason.
NOT_APPLICABLE: dict[tuple[str, str], list[tuple[CheckFunction, str]]] = {}


def not_applicable(check: CheckFunction, reason: str, *operations: tuple[str, str]) -> None:
    """Record that ``check`` does not apply to ``operations``, and why."""
    assert reason
    for operation in operations:
        NOT_APPLICABLE.setdefault(operation, []).append((check, reason))


# Whether valid input succeeds depends on what exists on disk or in a registry, which the
# generated requests cannot know (as in Jupyter Server, same statuses).
not_applicable(
    checks.positive_data_acceptance,
    "the outcome depends on the files present (exists, is a file, is the root)",
    ("DELETE", "/api/contents"),
    ("DELETE", "/api/contents/{path}"),
    ("PATCH", "/api/contents"),
    ("PUT", "/api/contents"),
    ("POST", "/api/contents"),
    ("GET", "/api/contents"),
    ("POST", "/api/contents/{path}"),
    ("PUT", "/api/contents/{path}"),
    ("GET", "/api/contents/{path}"),
    ("PATCH", "/api/contents/{path}"),
    ("POST", "/api/contents/{path}/trust"),
    ("POST", "/api/jobs"),
)
not_applicable(
    checks.positive_data_acceptance,
    "schema_id must name a registered event schema; a kernel spec, a kernel, a terminal "
    "name or an extension command must exist or be allowed, which a schema cannot list",
    ("POST", "/api/events"),
    ("POST", "/api/kernels"),
    ("POST", "/api/sessions"),
    ("PATCH", "/api/sessions/{session_id}"),
    ("POST", "/api/terminals"),
    ("POST", "/api/apps"),
    ("POST", "/lab/api/extensions"),
    ("PUT", "/lab/api/workspaces/{workspace_id}"),
)
not_applicable(
    checks.positive_data_acceptance,
    "schemathesis sends a JSON-content query parameter as a JSON string, not an object",
    ("GET", "/api/me"),
)
not_applicable(
    checks.positive_data_acceptance,
    "Upload-Metadata must decode (base64, UTF-8) to a destination that can be written",
    ("POST", "/api/uploads"),
)
# tus bodies are raw bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
# The tus protocol answers 412 (with Tus-Version) to a request without Tus-Resumable 1.0.0.
for _check in (checks.missing_required_header, checks.negative_data_rejection):
    not_applicable(
        _check,
        "tus answers a missing or other Tus-Resumable with 412 Precondition Failed",
        ("POST", "/api/uploads"),
        ("HEAD", "/api/uploads/{upload_id}"),
        ("PATCH", "/api/uploads/{upload_id}"),
        ("DELETE", "/api/uploads/{upload_id}"),
    )
# Jupyter paths are catch-alls: PATCH /api/contents/a/checkpoints renames a file named
# "checkpoints" in folder "a", and /lab/api/settings/ matches the settings of plugin "".
not_applicable(
    checks.unsupported_method,
    "the path is also a valid contents or settings path for the other methods",
    ("PATCH", "/api/contents/{path}/checkpoints"),
    ("PATCH", "/api/contents/{path}/checkpoints/{checkpoint_id}"),
    ("PATCH", "/api/contents/{path}/trust"),
    ("PUT", "/lab/api/settings/"),
    ("PUT", "/lab/api/workspaces/"),
    ("DELETE", "/lab/api/workspaces/"),
    ("DELETE", "/lab/api/settings/"),
)

EVERYWHERE: list[tuple[CheckFunction, str]] = [
    (
        checks.allow_header_conformance,
        "Starlette's 405 lists the methods of the first route that matches the path only, "
        "when one path is served by several routes",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A live ``junction`` (full profile) over a temporary root with files and a notebook."""
    base = tmp_path_factory.mktemp("schemathesis")
    root = base / "root"
    (root / "folder").mkdir(parents=True)
    (root / "hello.txt").write_text("hello\n")
    (root / "folder" / "data.csv").write_text("a,b\n1,2\n")
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "notebook.ipynb").write_text(json.dumps(notebook))
    env = {
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        process = ServerProcess(
            [
                "--profile=full",
                "--ip=127.0.0.1",
                "--port=0",
                f"--root-dir={root}",
                "--set=kernels.max_kernels=2",
            ],
            log_path=base / "junction.log",
        ).start()
    try:
        yield process
    finally:
        process.stop()


def _shape(path: str) -> str:
    """A path with its parameters unnamed, to match operations across specs."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def _merged_spec() -> dict[str, Any]:
    """The spec the server below serves at /api/spec.yaml, built from the files on disk.

    Built at collection time (schemathesis makes one test per operation);
    test_served_spec_is_the_one_tested checks the live server serves the same.
    """
    from junction.registry import compose, enabled_names
    from junction.spec.merge import merge_documents
    from junction.spec.routes import CORE, core_contract

    composition = compose(enabled_names("full", [], []))
    return merge_documents([(CORE, core_contract()), *composition.contracts.items()], "/")


MERGED = _merged_spec()
OPERATIONS = {(method.upper(), path) for path, item in MERGED["paths"].items() for method in item}
junction_schema = schemathesis.openapi.from_dict(MERGED).exclude(
    func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SKIPPED_OPERATIONS
)

SHARED = {(method, _shape(path)) for method, path in OPERATIONS - SKIPPED_OPERATIONS}
JUPYTER_API_YAML = Path(jupyter_server.__file__).parent / "services" / "api" / "api.yaml"
jupyter_schema = schemathesis.openapi.from_path(JUPYTER_API_YAML).include(
    func=lambda ctx: (ctx.operation.method.upper(), _shape(ctx.operation.path)) in SHARED
)


def _excluded(case: Case[Any]) -> list[CheckFunction]:
    # case.method differs from the operation's when the check probes an undeclared method.
    key = (case.method.upper(), case.operation.path)
    return [check for check, _ in (*EVERYWHERE, *NOT_APPLICABLE.get(key, []))]


@junction_schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)
def test_junction_conforms_to_its_spec(case: Case[Any], server: ServerProcess) -> None:
    case.call_and_validate(
        base_url=server.url.rstrip("/"), headers=AUTH, excluded_checks=_excluded(case), timeout=30
    )


# Checks Jupyter Server's api.yaml cannot pass for Jupyter Server itself, each with the
# reason (verified by reading the file from the installed jupyter_server 2.x):
JUPYTER_SPEC_WRONG: list[tuple[CheckFunction, str]] = [
    (
        checks.status_code_conformance,
        "it documents few error codes (no 403 for unauthenticated calls, no 400/404 on "
        "most operations) that jupyter_server itself returns",
    ),
    (
        checks.positive_data_acceptance,
        "its parameters and bodies are loose (any string for a kernel name, a path, a "
        "session's kernel) where jupyter_server answers 4xx to most of them",
    ),
    (
        checks.response_headers_conformance,
        "it requires a Location header on responses where jupyter_server sends none",
    ),
    (
        checks.negative_data_rejection,
        "its Swagger 2.0 body schemas are not strict (no additionalProperties: false, "
        "nullable fields typed as plain strings), so a 'violating' body is often valid",
    ),
    (
        checks.allow_header_conformance,
        "see EVERYWHERE: Starlette's 405 Allow header",
    ),
    (
        checks.unsupported_method,
        "its paths omit methods jupyter_server serves (e.g. PUT /api/config/{section})",
    ),
]


JUPYTER_SPEC_WRONG_FOR: dict[tuple[str, str], list[tuple[CheckFunction, str]]] = {
    ("GET", "/api/me"): [
        (
            checks.response_schema_conformance,
            "its Identity types avatar_url, initials and color as strings; jupyter_server "
            "sends null when they are unset",
        )
    ],
    ("GET", "/api/spec.yaml"): [
        (
            checks.response_schema_conformance,
            "it types the YAML document as a string; read as YAML it is a mapping",
        )
    ],
}


@jupyter_schema.parametrize()
@hypothesis.settings(
    max_examples=JUPYTER_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
    # Generated cases only: the boundary cases of a spec we do not own add time, not bugs.
    phases=[hypothesis.Phase.generate],
)
def test_junction_conforms_to_jupyter_servers_spec(case: Case[Any], server: ServerProcess) -> None:
    key = (case.method.upper(), case.operation.path)
    excluded = [check for check, _ in (*JUPYTER_SPEC_WRONG, *JUPYTER_SPEC_WRONG_FOR.get(key, []))]
    case.call_and_validate(
        base_url=server.url.rstrip("/"), headers=AUTH, excluded_checks=excluded, timeout=30
    )


def test_served_spec_is_the_one_tested(server: ServerProcess) -> None:
    response = httpx.get(server.url + "api/spec.yaml", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-yaml")
    assert yaml.safe_load(response.text) == MERGED


def test_every_exclusion_names_an_operation_of_the_spec() -> None:
    # An exclusion for an operation that no longer exists hides nothing: drop it.
    unsupported = {
        key
        for key, entries in NOT_APPLICABLE.items()
        for check, _ in entries
        if check is checks.unsupported_method
    }
    assert (set(NOT_APPLICABLE) | SKIPPED_OPERATIONS) - unsupported - OPERATIONS == set()


def test_jupyter_servers_spec_shares_the_core_operations() -> None:
    shared = {(m, p) for m, p in SHARED}
    for operation in [("GET", "/api/kernels/{}"), ("GET", "/api/contents/{}"), ("GET", "/api/me")]:
        assert operation in shared
