"""Shared builders for the tests: small networks written with the public API."""

import pytest

import trafficsim as ts


def corridor(lanes=(2, 1), lengths=(10000.0, 2000.0), vf=100.0, q=2000.0, kj=150.0, demand=None, duration=3600.0,
             name="corridor"):
    """A chain of links A0 -> A1 -> ... with the given lane counts and lengths."""
    net = ts.Network()
    for i in range(len(lanes) + 1):
        net.add_node(f"N{i}", x=sum(lengths[:i]), y=0.0)
    for i, (n, L) in enumerate(zip(lanes, lengths)):
        net.add_link(f"L{i}", f"N{i}", f"N{i + 1}", length_m=L, lanes=n, free_speed_kmh=vf,
                     capacity_vph_per_lane=q, jam_density_vpkm_per_lane=kj)
    d = ts.Demand()
    d.add("N0", f"N{len(lanes)}", demand if demand is not None else [(0, 3600)])
    return ts.Scenario(network=net, demand=d, duration_s=duration, name=name)


@pytest.fixture
def make_corridor():
    return corridor
