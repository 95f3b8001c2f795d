"""The app factory: composition checks, lifespans, error bodies, core routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter

from junction import (
    BadRequest,
    ConfigError,
    Plugin,
    PluginContext,
    PluginGraphError,
    ServiceKey,
    use,
)
from junction.app import create_app
from junction.plugin import PluginSettings
from junction.testing import app_client, make_settings

pytestmark = pytest.mark.anyio

GREETER: ServiceKey[list[str]] = ServiceKey("greeter")


def _provider(events: list[str]) -> Plugin:
    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        events.append("provider start")
        ctx.provide(GREETER, ["hello"])
        yield
        events.append("provider stop")

    return Plugin(
        name="provider", description="provides greeter", provides=[GREETER], lifespan=lifespan
    )


def _consumer(events: list[str]) -> Plugin:
    router = APIRouter()

    @router.get("/api/greeting")
    async def greeting(greeter: Annotated[list[str], use(GREETER)]) -> dict[str, str]:
        return {"greeting": greeter[0]}

    @router.get("/api/broken")
    async def broken() -> None:
        raise BadRequest("that was bad", reason="bad thing")

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        events.append(f"consumer start sees {ctx.get(GREETER)[0]}")
        yield
        events.append("consumer stop")

    return Plugin(
        name="consumer",
        description="uses greeter",
        requires=[GREETER],
        routers=[router],
        lifespan=lifespan,
    )


async def test_plugins_start_in_dependency_order_and_stop_in_reverse() -> None:
    events: list[str] = []
    async with app_client(plugins=[_consumer(events), _provider(events)]) as client:
        response = await client.get("/api/greeting")
        assert response.json() == {"greeting": "hello"}
    assert events == [
        "provider start",
        "consumer start sees hello",
        "consumer stop",
        "provider stop",
    ]


async def test_domain_errors_become_jupyter_error_bodies() -> None:
    async with app_client(plugins=[_consumer([]), _provider([])]) as client:
        response = await client.get("/api/broken")
    assert response.status_code == 400
    assert response.json() == {"message": "that was bad", "reason": "bad thing"}


async def test_unknown_route_is_a_json_404() -> None:
    async with app_client() as client:
        response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "reason": "Not Found"}


def test_missing_required_service_is_reported_by_name() -> None:
    with pytest.raises(PluginGraphError, match="consumer requires greeter; no installed plugin"):
        create_app(make_settings(), plugins=[_consumer([])])


def test_two_providers_of_one_service_are_refused() -> None:
    other = Plugin(name="other", description="", provides=[GREETER])
    with pytest.raises(PluginGraphError, match="provided by both provider and other"):
        create_app(make_settings(), plugins=[_provider([]), other])


def test_dependency_cycle_is_reported() -> None:
    a_key: ServiceKey[int] = ServiceKey("a")
    b_key: ServiceKey[int] = ServiceKey("b")
    first = Plugin(name="first", description="", provides=[a_key], requires=[b_key])
    second = Plugin(name="second", description="", provides=[b_key], requires=[a_key])
    with pytest.raises(
        PluginGraphError, match=r"cycle: (first -> second -> first|second -> first -> second)"
    ):
        create_app(make_settings(), plugins=[first, second])


def test_two_plugins_claiming_one_route_are_refused() -> None:
    def make(name: str) -> Plugin:
        router = APIRouter()

        @router.get("/api/same")
        async def same() -> None: ...

        return Plugin(name=name, description="", routers=[router])

    with pytest.raises(PluginGraphError, match="plugins one and two both claim GET /api/same"):
        create_app(make_settings(), plugins=[make("one"), make("two")])


def test_unknown_plugin_setting_is_refused_with_the_valid_keys() -> None:
    class Knobs(PluginSettings):
        level: int = 1

    plugin = Plugin(name="knobby", description="", settings=Knobs)
    with pytest.raises(ConfigError, match=r"unknown setting knobby.levle; knobby accepts: level"):
        create_app(make_settings(plugins={"knobby": {"levle": 2}}), plugins=[plugin])


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        create_app(make_settings(profile="nope"))


async def test_api_reports_version_and_status() -> None:
    async with app_client() as client:
        version = (await client.get("/api")).json()
        status = (await client.get("/api/status")).json()
    assert set(version) == {"version"}
    assert set(status) == {"started", "last_activity", "connections", "kernels"}
    assert status["kernels"] == 0
    assert status["started"].endswith("Z")


async def test_app_client_passes_plugin_settings() -> None:
    class Knobs(PluginSettings):
        level: int = 1

    seen: list[int] = []

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Knobs]) -> AsyncIterator[None]:
        seen.append(ctx.settings.level)
        yield

    plugin = Plugin(name="knobby", description="", settings=Knobs, lifespan=lifespan)
    async with app_client(plugins=[plugin], plugin_settings={"knobby": {"level": 7}}):
        pass
    assert seen == [7]
