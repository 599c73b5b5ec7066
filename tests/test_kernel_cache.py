"""The guard against numba's stale cross-file cache (numba issue #1833): cached kernels are
dropped when any kernel source changes, kept otherwise."""

from pathlib import Path

from trafficsim._kernel_cache import invalidate_stale_cache


def _cache_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.suffix in (".nbi", ".nbc"))


def test_cached_kernels_are_dropped_when_any_kernel_source_changes(tmp_path):
    src, cache = tmp_path / "kernels", tmp_path / "kernels" / "__pycache__"
    cache.mkdir(parents=True)
    (src / "micro.py").write_text("def step(): return helper()\n")
    (src / "micro_lanes.py").write_text("def helper(): return 1\n")
    sources = sorted(src.glob("*.py"))

    def compiled():  # what numba writes for micro.step: keyed on micro.py's own timestamp only
        for name in ("micro.step-1.py311.nbi", "micro.step-1.py311.1.nbc"):
            (cache / name).write_bytes(b"machine code")

    compiled()
    assert invalidate_stale_cache(cache, sources)  # no digest yet: nothing is known to match
    assert _cache_files(cache) == []
    compiled()
    assert not invalidate_stale_cache(cache, sources)  # same sources: the cache stays
    assert len(_cache_files(cache)) == 2
    (src / "micro_lanes.py").write_text("def helper(): return 2\n")  # only the callee's file changed
    assert invalidate_stale_cache(cache, sources)
    assert _cache_files(cache) == []
    assert (src / "micro.py").exists() and (src / "micro_lanes.py").read_text().endswith("2\n")


def test_a_read_only_or_missing_cache_directory_is_not_an_error(tmp_path):
    (tmp_path / "k.py").write_text("x = 1\n")
    assert not invalidate_stale_cache(tmp_path / "absent", [tmp_path / "k.py"])
