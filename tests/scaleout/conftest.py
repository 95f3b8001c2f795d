"""The replica set every scale-out test shares: PostgreSQL, three replicas, nginx.

Starting the set costs several seconds, so one set serves the whole package
(``replica_set_shared``). Tests ask for ``replica_set``, which first restarts any replica an
earlier test killed, so a test may kill replicas (or stop PostgreSQL, if it starts it again)
and leave the repair to the next test that needs the set whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .replicas import ReplicaSet, replica_set_running


@pytest.fixture(scope="package")
def replica_set_shared(request: pytest.FixtureRequest) -> Iterator[ReplicaSet]:
    """Three ``multiuser`` replicas (full + users) on one PostgreSQL of their own, behind nginx."""
    # The test PostgreSQL helpers are the ``conftest_pg`` pytest plugin (tests/conftest.py).
    postgres = request.config.pluginmanager.get_plugin("conftest_pg")
    assert postgres is not None, "tests/conftest.py must load the conftest_pg plugin"
    # The default users.cache_seconds (60): a revocation made through one replica reaches
    # the others through the users' credentials generation, polled every second.
    with replica_set_running(postgres.PostgresCluster, 3, profile="multiuser") as running:
        yield running


@pytest.fixture
def replica_set(replica_set_shared: ReplicaSet) -> ReplicaSet:
    """The shared set with every replica running and ready (dead ones restarted)."""
    for replica in replica_set_shared.replicas:
        if not replica.alive():
            replica.start()
    return replica_set_shared
