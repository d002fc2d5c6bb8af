"""pytest fixtures: a fresh partner simulator over real HTTP for each test.

Load with `pytest_plugins = ["tests.partner_sim_fixture"]` (in tests/conftest.py for
every test, or in one test module).

    def test_delivery(partner_sim):                  # defaults: no auth, no faults
        settings = PartnerSettings(base_url=partner_sim.url)
        partner_sim.script({"kind": "record", "status": 503})
        ...
        assert partner_sim.stats()["records_created"] == 1

    @pytest.mark.parametrize("partner_sim", [{"token": "t0k", "latency_ms": 50}], indirect=True)
    def test_with_knobs(partner_sim): ...

    def test_two_partners(partner_sim_factory):
        a, b = partner_sim_factory(seed=1), partner_sim_factory(outage=True)

Each simulator listens on a free port of 127.0.0.1 and is stopped after the test
(hanging requests are cut short, so teardown takes well under a second).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sidecar.partner_sim import RunningSim, run_in_thread


@pytest.fixture
def partner_sim_factory() -> Iterator[Callable[..., RunningSim]]:
    """Starts simulators with the given knobs (see sidecar.partner_sim.knobs.Knobs)."""
    started: list[RunningSim] = []

    def start(listen: str = "127.0.0.1:0", **knobs: Any) -> RunningSim:
        sim = run_in_thread(listen, **knobs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def partner_sim(request: pytest.FixtureRequest,
                partner_sim_factory: Callable[..., RunningSim]) -> RunningSim:
    """A running simulator with fresh state; knobs via indirect parametrization."""
    knobs: dict[str, Any] = getattr(request, "param", None) or {}
    return partner_sim_factory(**knobs)
