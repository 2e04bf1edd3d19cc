"""The composition root wires by constructor only (issue 14): every collaborator of a service,
listener set or scheduler is a required argument, so nothing is set afterwards and no service
guards against a collaborator that is missing. And the root, the runtime and the command line
stay small enough to read."""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from bot.app import Services, build_services
from bot.clock import FakeClock
from handlers.slack.app import build_app as build_slack_app
from handlers.telegram import register as register_telegram
from scheduler import build_scheduler
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]

# The names of what a service may be given: the services themselves and the core's ports.
COLLABORATOR_TYPES = ("Service", "SeenRequests", "Purger", "OnLinked", "Waker", "UnitOfWork")


def _collaborators(function: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters of ``function`` that take a collaborator (by their annotation)."""
    return {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if any(kind in str(p.annotation) for kind in COLLABORATOR_TYPES)
    }


def _service_classes() -> list[type]:
    """The class of every service the composition root builds (``X | None``: X, a service
    that is built only when the configuration asks for it)."""
    hints = get_type_hints(Services)
    return [
        next(a for a in get_args(t) if a is not type(None)) if isinstance(t, types.UnionType) else t
        for name, t in hints.items()
        if name not in ("config", "db", "clock", "wake")
    ]


@pytest.mark.parametrize("cls", _service_classes(), ids=lambda c: c.__name__)
def test_every_collaborator_of_a_service_is_a_required_constructor_argument(cls: type) -> None:
    optional = [
        name
        for name, p in _collaborators(cls.__init__).items()
        if p.default is not inspect.Parameter.empty
    ]
    assert optional == [], f"{cls.__name__} may be built without {optional}"


@pytest.mark.parametrize(
    "function",
    [register_telegram, build_slack_app, build_scheduler],
    ids=lambda f: f"{f.__module__}.{f.__name__}",
)
def test_the_adapters_and_the_scheduler_take_every_service(function: Callable[..., Any]) -> None:
    optional = [
        name
        for name, p in _collaborators(function).items()
        if p.default is not inspect.Parameter.empty
    ]
    assert optional == [], f"{function.__name__} may be called without {optional}"


async def test_every_service_a_service_holds_came_through_its_constructor(
    db_url: str, clock: FakeClock
) -> None:
    """Built by the composition root, a service holds another service (or one of its methods)
    only under the name of a constructor argument (nothing was set afterwards), and no
    collaborator it was built with is missing (None)."""
    # With the web form and the public PACT pages on, so that their services are built too.
    config = make_config(db_url, env={"TENSIONBOT_WEB_SECRET": "w" * 32}, web={"public_pact": True})
    services = await build_services(config, clock=clock, migrate=False)
    try:
        built = {id(getattr(services, f.name)): f.name for f in dataclasses.fields(Services)}
        for field in dataclasses.fields(Services):
            service = getattr(services, field.name)
            if field.name in ("config", "db", "clock", "wake"):
                continue
            assert service is not None, f"{field.name} was not built"
            given = set(inspect.signature(type(service).__init__).parameters)
            for name, value in vars(service).items():
                held = built.get(id(getattr(value, "__self__", value)))
                if held is not None and held not in ("config", "db", "clock", "wake"):
                    assert name in given, f"{field.name}.{name} ({held}) was set, not given"
            unset = [
                n for n in _collaborators(type(service).__init__) if vars(service).get(n) is None
            ]
            assert unset == [], f"{field.name}: {unset} unset"
    finally:
        await services.close()


def _root_modules() -> list[str]:
    paths = [ROOT / "bot" / "app.py", ROOT / "bot" / "runtime.py", ROOT / "bot" / "cli.py"]
    paths += sorted((ROOT / "bot" / "cli").glob("*.py"))
    return [str(p.relative_to(ROOT)) for p in paths if p.exists()]


@pytest.mark.parametrize("path", _root_modules())
def test_the_root_the_runtime_and_the_command_line_are_under_500_lines(path: str) -> None:
    lines = len((ROOT / path).read_text().splitlines())
    assert lines <= 500, f"{path} has {lines} lines"
