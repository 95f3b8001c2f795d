"""The sessions plugin as the core sees it: its declaration, composition and settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from junction import ConfigError, Plugin, PluginGraphError
from junction.app import create_app
from junction.plugins.kernels.service import KERNELS
from junction.plugins.sessions import SESSIONS, plugin
from junction.registry import compose, discover
from junction.services import DATABASE
from junction.testing import make_settings

from .fakes import FakeKernels, fake_kernels_plugin


@dataclass
class _EntryPoint:
    """Stands in for an installed plugin's entry point."""

    plugin: Plugin

    def load(self) -> Plugin:
        return self.plugin


def test_plugin_declares_that_it_needs_kernels_and_provides_sessions() -> None:
    assert plugin.name == "sessions"
    assert list(plugin.requires) == [KERNELS, DATABASE]
    assert list(plugin.provides) == [SESSIONS]
    assert discover()["sessions"].load() is plugin


def test_sessions_without_kernels_is_refused_naming_the_plugin_to_enable() -> None:
    kernels = Plugin(name="kernels", description="stand-in", provides=[KERNELS])
    available = {"sessions": _EntryPoint(plugin), "kernels": _EntryPoint(kernels)}
    with pytest.raises(PluginGraphError) as caught:
        compose(["sessions"], available=available)
    assert str(caught.value) == "sessions requires kernels; enable kernels"


def test_sessions_without_any_kernels_provider_installed_is_refused() -> None:
    with pytest.raises(PluginGraphError) as caught:
        compose(["sessions"], available={"sessions": _EntryPoint(plugin)})
    assert str(caught.value) == "sessions requires kernels; no installed plugin provides it"


def test_sessions_compose_with_any_kernels_provider() -> None:
    app = create_app(
        make_settings(enable=["sessions"]), plugins=[fake_kernels_plugin(FakeKernels())]
    )
    order = [p.name for p in app.state.composition.order]
    assert order.index("fake-kernels") < order.index("sessions")


def test_unknown_sessions_setting_is_refused_listing_the_valid_ones() -> None:
    settings = make_settings(enable=["sessions"], plugins={"sessions": {"stor": "memory"}})
    with pytest.raises(
        ConfigError,
        match=r"^unknown setting sessions.stor; sessions accepts: list_sessions, store$",
    ):
        create_app(settings, plugins=[fake_kernels_plugin(FakeKernels())])


def test_unsupported_store_is_refused() -> None:
    settings = make_settings(enable=["sessions"], plugins={"sessions": {"store": "sqlite"}})
    with pytest.raises(
        ConfigError,
        match=r"(?s)invalid settings for plugin sessions: .*store\n  Input should be "
        r"'database' or 'memory'",
    ):
        create_app(settings, plugins=[fake_kernels_plugin(FakeKernels())])
