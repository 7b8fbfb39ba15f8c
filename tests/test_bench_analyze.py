"""The throughput benchmark wraps pipeline functions by name: each must still exist where the
pipeline looks it up, or the benchmark breaks (as it did once after a refactor)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_analyze.py"


def test_every_wrapped_stage_function_exists():
    spec = importlib.util.spec_from_file_location("bench_analyze", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    child = mod.CHILD
    # the child's aliases, e.g. "fortmap.analysis as A"
    aliases = dict((a, m) for m, a in re.findall(r"(fortmap[\w.]*) as (\w+)", child))
    namespace = {a: importlib.import_module(m) for a, m in aliases.items()}
    exec("from fortmap.detect.change import ChangeModel", namespace)  # noqa: S102
    wrapped = re.findall(r"\((\w+), \"(\w+)\", \"[\w ]+\"\)", child)
    assert len(wrapped) >= 10
    for owner, name in wrapped:
        assert hasattr(namespace[owner], name), f"{owner}.{name} is gone"
