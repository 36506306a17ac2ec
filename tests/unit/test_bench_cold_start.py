"""The cold-start probe of `make bench`: it runs, and leaves uncounted only the standard library."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

from bench import cold_start

ROOT = Path(__file__).resolve().parents[2]


def test_what_the_probe_leaves_uncounted_is_the_standard_library_only() -> None:
    # The runtime's bootstrap imports these before the handler; anything of ours or of our
    # dependencies in this list would hide part of the cold start.
    for name in cold_start.RUNTIME_PREIMPORTS:
        assert name.split(".")[0] in sys.stdlib_module_names, name


@pytest.mark.parametrize("profile", sorted(cold_start.PROFILES))
def test_the_probe_imports_the_app_and_builds_the_dependencies(profile: str) -> None:
    # The project's tree stands for the unzipped package (app.py, chalicelib), and the
    # virtualenv's site-packages for the runtime and the package's dependencies.
    site_packages = Path(boto3.__file__).resolve().parents[1]
    figures = cold_start.measure_once(ROOT, site_packages, cold_start.devstack_like_env(),
                                      profile)
    for key in ("import_app_ms", "import_handlers_ms", "dependencies_ms"):
        assert figures[key] > 0, key
    assert figures["maxrss_kb"] > 10_000
