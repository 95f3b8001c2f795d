"""The quick reading of spec files the startup check uses agrees with a full YAML parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from junction.registry import contract_of, discover, load
from junction.spec.contract import Contract, scan_channels, scan_operations
from junction.spec.routes import core_contract


def shipped() -> list[Contract]:
    """The core's spec files and every installed plugin's."""
    available = discover()
    contracts = [core_contract()]
    for name in sorted(available):
        load(name, available)
        contracts.append(contract_of(name, available))
    return contracts


def test_quick_reading_of_every_shipped_file_matches_the_yaml() -> None:
    for contract in shipped():
        quick = scan_operations(contract.openapi_path.read_text())
        assert quick is not None, f"{contract.openapi_path} is not in the generator's layout"
        full = Contract(contract.directory)
        assert full.openapi  # parse it all
        assert quick == full.operations(), contract.openapi_path
        if contract.asyncapi_path.exists():
            channels = scan_channels(contract.asyncapi_path.read_text())
            assert channels is not None
            assert full.asyncapi
            assert channels == full.channels()


OPENAPI = """\
openapi: 3.1.0
# a comment
paths:
  /a:
    description: |
      A block scalar at the path level,
      get: not a method
    get:
      responses: {}
  '/b/{id}':
    parameters:
    - in: path
      name: id
    delete:
      description: x
    "post":
      responses:
        '200':
          description: ok
components: {}
"""


def test_quick_reading_handles_quotes_comments_and_block_scalars() -> None:
    assert scan_operations(OPENAPI) == {("GET", "/a"), ("DELETE", "/b/{id}"), ("POST", "/b/{id}")}


@pytest.mark.parametrize(
    "text",
    [
        "paths: {/a: {get: {}}}\n",
        "paths:\n  /a: &item\n    get: {}\n  /b: *item\n",
        "paths:\n  /a:\n    <<: {get: {}}\n",
        "paths:\n  /a:\n    x-unknown: 1\n",
        "paths:\n    /a:\n  /b:\n",
    ],
    ids=["flow", "anchors", "merge-key", "unknown-key", "odd-indent"],
)
def test_quick_reading_gives_up_on_other_layouts(text: str) -> None:
    assert scan_operations(text) is None


def test_a_file_in_another_layout_is_parsed_in_full(tmp_path: Path) -> None:
    (tmp_path / "openapi.yaml").write_text("paths: {/a: {get: {}, put: {}}}\n")
    assert Contract(tmp_path).operations() == {("GET", "/a"), ("PUT", "/a")}


def test_channels_are_read_by_address(tmp_path: Path) -> None:
    text = "asyncapi: 3.0.0\nchannels:\n  feed:\n    address: '/api/x/{id}'\n    title: x\n"
    assert scan_channels(text) == {"/api/x/{id}"}
    assert scan_channels("channels:\n  feed:\n    $ref: '#/x'\n") is None
    assert scan_channels("channels:\n  feed:\n    title: no address\n") is None
    assert scan_channels("asyncapi: 3.0.0\n") == set()


def test_missing_files_describe_nothing(tmp_path: Path) -> None:
    assert Contract(tmp_path).operations() == set()
    assert Contract(tmp_path).channels() == set()
