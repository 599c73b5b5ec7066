"""The benchmark gate itself: an artificially slowed kernel must trip it; the logic is exact."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gate  # noqa: E402
from cases import onramp_corridor  # noqa: E402


def test_compare_flags_only_ratios_beyond_threshold_plus_noise():
    base = {"cases": {"a": {"ratio": 10.0, "noise": 0.05}, "b": {"ratio": 10.0, "noise": 0.0}}}
    now = {"a": {"ratio": 12.9, "noise": 0.0}, "b": {"ratio": 12.6, "noise": 0.0}}
    problems = gate.compare(now, base, threshold=0.25)
    assert len(problems) == 1 and problems[0].startswith("b:")
    assert gate.compare({"a": {"ratio": 10.0, "noise": 0.0}}, base)[0] == "b: missing from this run"


def test_slowed_kernel_trips_the_gate():
    cases = {"corridor": gate._kernel_case(onramp_corridor(duration_s=1800.0), 0.5)}
    baseline = {"cases": gate.measure(cases, repeats=3)}
    slowed = gate.measure(cases, repeats=3, slowdown=4)
    assert gate.compare(slowed, baseline), "a kernel 4x slower must fail the gate"


def test_unknown_case_is_an_error_naming_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        gate.main(["--cases", "no_such_case"])
    assert "unknown case(s) ['no_such_case']; known:" in capsys.readouterr().err
