"""The replica set every scale-out test shares: PostgreSQL, three replicas, nginx.

``replica_set`` is package-scoped: test modules in this folder reuse one set (starting it
costs a few seconds). A test that kills or restarts a replica, or stops PostgreSQL, leaves
the set as it found it (every replica running and ready) before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .replicas import ReplicaSet, replica_set_running


@pytest.fixture(scope="package")
def replica_set(request: pytest.FixtureRequest) -> Iterator[ReplicaSet]:
    """Three ``full`` replicas on one PostgreSQL of their own, behind nginx."""
    # The test PostgreSQL helpers are the ``conftest_pg`` pytest plugin (tests/conftest.py).
    postgres = request.config.pluginmanager.get_plugin("conftest_pg")
    assert postgres is not None, "tests/conftest.py must load the conftest_pg plugin"
    with replica_set_running(postgres.PostgresCluster, 3) as running:
        yield running
