"""Fixtures of the infrastructure checks: the built templates, and one `chalice package` run.

`chalice package` takes seconds (it vendors the wheels), so it runs once per session; the tests
that need its output live in one file, which pytest-xdist's `--dist loadfile` keeps on one worker.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_support import BIN, PACKAGE_ENV, ROOT, Package
from start_script import make_instance

from infra import build, buildconfig, runnerconfigs
from scripts.precompile_package import precompile


@pytest.fixture(scope="session")
def stack_template() -> dict[str, Any]:
    """infra/runners-stack.yaml as built from infra/src (long-form intrinsics)."""
    return build.stack_template()


@pytest.fixture(scope="session")
def merge_template(stack_template: dict[str, Any]) -> dict[str, Any]:
    """infra/template.yaml as built from infra/src."""
    return build.merge_template(stack_template)


@pytest.fixture(scope="session")
def configured_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra/runners-stack.yaml built with the sample build configuration, as a file."""
    config = buildconfig.load(ROOT / "infra" / "params" / "dev.build.sample.json")
    path = tmp_path_factory.mktemp("configured") / "runners-stack.yaml"
    path.write_text(build.dump(build.stack_template(config)))
    return path


@pytest.fixture(scope="session")
def runner_configs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both templates built with the sample runner configurations (three Linux, one Windows)
    and the sample build configuration, as files: runners-stack.yaml and template.yaml."""
    directory = tmp_path_factory.mktemp("runner-configs")
    files = build.configured_outputs(ROOT / "infra" / "params" / "dev.build.sample.json",
                                     directory, RUNNER_CONFIGS_SAMPLE)
    for path, content in files.items():
        path.write_text(content)
    return directory


RUNNER_CONFIGS_SAMPLE = ROOT / "infra" / "params" / "runner-configs.sample.yaml"


@pytest.fixture(scope="session")
def runner_configs() -> list[runnerconfigs.RunnerConfig]:
    """The sample runner configurations."""
    return runnerconfigs.load(RUNNER_CONFIGS_SAMPLE)


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """`chalice package` of the sample stage `sample`, merged with infra/template.yaml, then
    precompiled (scripts/precompile_package.py), as `make package` ships it."""
    out = tmp_path_factory.mktemp("package") / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(PACKAGE_ENV)
    result = subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", "sample",
         "--merge-template", str(build.TEMPLATE), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"chalice package failed:\n{result.stdout}\n{result.stderr}"
    precompile(out / "deployment.zip")
    template = yaml.safe_load((out / "sam.yaml").read_text())
    return Package(directory=out, template=template)



@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """A stand-in runner instance for infra/src/start-runner.sh (tests/infra/start_script.py)."""
    return make_instance(tmp_path)
