"""Cold start as Lambda meets it, and the size of the deployment package.

`chalice package` builds the zip the functions ship, scripts/precompile_package.py adds its
bytecode; it is unzipped and, in a fresh interpreter that writes no bytecode (Lambda's file system
is read-only, and a new container has nothing to reuse), `app` is imported and the handlers'
dependencies are built. The python3.11 runtime provides boto3, so the virtualenv's copy (and its
dependencies) goes on the path after the package, as the runtime does; and its bootstrap has
imported some of the standard library before the handler's module, so the probe does that first,
uncounted (RUNTIME_PREIMPORTS). The same is measured over chalice's package without bytecode.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from bench.common import Figures

PROJECT = Path(__file__).resolve().parents[1]
# What the python3.11 Lambda runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")
STAGE = "sample"  # the stage of .chalice/config.json that `make package` packages

# What each cold start builds: one function's own, as the Lambda container of that function
# meets it (each function runs in containers of its own), or every handler's at once, which no
# container does: an upper bound.
PROFILES: dict[str, dict[str, Any]] = {
    "all": {"modules": ["services.scale_up", "services.scale_down", "services.pool",
                        "services.webhook"],
            "builders": ["scale_up", "scale_down", "adjust_pool", "webhook"]},
    "scale_up": {"modules": ["services.scale_up"], "builders": ["scale_up"]},
    "scale_down": {"modules": ["services.scale_down"], "builders": ["scale_down"]},
    "adjust_pool": {"modules": ["services.pool"], "builders": ["adjust_pool"]},
    "webhook": {"modules": ["services.webhook"], "builders": ["webhook"]},
    "ec2_events": {"modules": ["services.ec2_events"], "builders": ["ec2_events"]},
}
FUNCTIONS = ("scale_up", "scale_down", "adjust_pool", "webhook", "ec2_events")

# What the python3.11 runtime's bootstrap (the runtime interface client, awslambdaric: its
# bootstrap.py, lambda_context.py, lambda_runtime_client.py, lambda_runtime_log_utils.py and
# lambda_runtime_marshaller.py) has imported from the standard library before it imports the
# handler's module: these cost a Lambda container the same with or without our code.
RUNTIME_PREIMPORTS = ("importlib", "json", "logging", "os", "sys", "time", "traceback",
                      "datetime", "enum", "decimal", "math", "concurrent.futures")

# The child process: one cold start of the profile in argv[1], reported as JSON on stdout.
PROBE = r"""
import importlib, json, resource, sys, time
spec = json.loads(sys.argv[1])
tr = time.perf_counter()
for name in spec["preimports"]:
    importlib.import_module(name)
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
for name in spec["modules"]:
    try:
        importlib.import_module("chalicelib." + name)
    except ModuleNotFoundError as error:
        if error.name != "chalicelib." + name:
            raise
t2 = time.perf_counter()
from chalicelib import wiring
# What the handler builds before its first call: the entry point's own wiring builder (its
# settings, every client and adapter it hands the service, the state table's included).
for builder in spec["builders"]:
    getattr(wiring, builder)()
t3 = time.perf_counter()
print(json.dumps({
    "runtime_preimports_ms": (t0 - tr) * 1000,
    "import_app_ms": (t1 - t0) * 1000,
    "import_handlers_ms": (t2 - t1) * 1000,
    "dependencies_ms": (t3 - t2) * 1000,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def devstack_like_env() -> dict[str, str]:
    """The environment of a devstack deployment (nothing listens: constructing calls nothing)."""
    from devstack.provision import ENVIRONMENT

    prefix = f"/github-action-runners/{ENVIRONMENT}"
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "GHES_URL": "http://127.0.0.1:9",
        "ENVIRONMENT": ENVIRONMENT,
        "ENABLE_ORGANIZATION_RUNNERS": "true",
        "LAUNCH_TEMPLATE_NAME": f"{ENVIRONMENT}-action-runner",
        "SUBNET_IDS": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "SSM_TOKEN_PATH": f"{prefix}/runners/tokens",
        "SSM_CONFIG_PATH": f"{prefix}/runners/config",
        "PARAMETER_GITHUB_APP_ID_NAME": f"{prefix}/app/github_app_id",
        "PARAMETER_GITHUB_APP_KEY_BASE64_NAME": f"{prefix}/app/github_app_key_base64",
        "PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME": f"{prefix}/app/github_app_webhook_secret",
        "SQS_URL_WEBHOOK": "http://127.0.0.1:9/123456789012/devstack-queued-builds",
        "STATE_TABLE_NAME": f"{ENVIRONMENT}-state",
        "RUNNER_OWNER": "acme",
        "LOG_LEVEL": "INFO",
    }


def build_package(workdir: Path) -> Path:
    """`chalice package` a copy of the project's sources; returns the deployment.zip."""
    source = workdir / "project"
    source.mkdir()
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(PROJECT / name, source / name)
    for name in ("chalicelib", "vendor"):
        if (PROJECT / name).is_dir():
            shutil.copytree(PROJECT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    (source / ".chalice").mkdir()
    for config in (PROJECT / ".chalice").glob("*.json"):
        shutil.copy2(config, source / ".chalice" / config.name)
    policy = source / ".chalice" / f"policy-{STAGE}.json"
    if not policy.exists():
        # The IAM policy shapes the template's role, never the zip measured here.
        policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": []}))
    out = workdir / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    chalice = Path(sys.executable).with_name("chalice")
    done = subprocess.run([str(chalice), "package", "--stage", STAGE, str(out)], cwd=source,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError("chalice package failed: " + " | ".join(tail))
    return out / "deployment.zip"


def runtime_dir(workdir: Path) -> Path:
    """A directory standing for the Lambda runtime's own packages (links into the venv)."""
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    runtime = workdir / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)
    return runtime


def measure_once(package: Path, runtime: Path, env: dict[str, str],
                 profile: str = "all") -> dict[str, float]:
    """One cold start of `profile` (see PROFILES) in a fresh interpreter; its figures."""
    child_env = {
        **env,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{package}{os.pathsep}{runtime}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    # -S: no site-packages of the virtualenv; -B: write no bytecode, so every run is as cold.
    spec = {**PROFILES[profile], "preimports": RUNTIME_PREIMPORTS}
    done = subprocess.run([sys.executable, "-S", "-B", "-c", PROBE, json.dumps(spec)],
                          cwd=package, env=child_env, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"cold start probe failed: {tail[0]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_cold_start(runs: int = 9) -> Figures:
    """Package size, and the median cold start and peak memory of `runs`, for the package as
    shipped (`chalice package`, then scripts/precompile_package.py adds the bytecode) and for
    chalice's package alone, without bytecode."""
    from scripts.precompile_package import precompile

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        workdir = Path(tmp)
        archive = build_package(workdir)
        raw_mb = archive.stat().st_size / 1_000_000
        raw = _unzip(archive, workdir / "raw")
        precompile(archive)
        package = _unzip(archive, workdir / "package")
        with zipfile.ZipFile(archive) as zipped:
            unzipped_bytes = sum(info.file_size for info in zipped.infolist())
        shipped_bytecode = list(package.rglob("*.pyc"))
        runtime = runtime_dir(workdir)
        env = devstack_like_env()
        # Profiles interleaved, so a burst of load on the machine weighs on all alike.
        by_profile: dict[str, list[dict[str, float]]] = {name: [] for name in PROFILES}
        without_bytecode: list[dict[str, float]] = []
        for _ in range(runs):
            for name in PROFILES:
                by_profile[name].append(measure_once(package, runtime, env, name))
            without_bytecode.append(measure_once(raw, runtime, env))
        zipped_mb = archive.stat().st_size / 1_000_000
    samples = by_profile["all"]
    totals = [_total(s) for s in samples]
    per_function = {name: round(statistics.median(map(_total, by_profile[name])), 1)
                    for name in FUNCTIONS}
    return {
        "package_zipped_mb": round(zipped_mb, 2),
        "package_zipped_without_bytecode_mb": round(raw_mb, 2),
        "package_unzipped_mb": round(unzipped_bytes / 1_000_000, 1),
        "package_pyc_files": len(shipped_bytecode),
        "import_app_ms": _median(samples, "import_app_ms"),
        "import_handler_modules_ms": _median(samples, "import_handlers_ms"),
        "construct_dependencies_ms": _median(samples, "dependencies_ms"),
        "cold_start_total_ms": round(statistics.median(totals), 1),
        "cold_start_total_max_ms": round(max(totals), 1),
        "cold_start_total_without_bytecode_ms": round(
            statistics.median(map(_total, without_bytecode)), 1),
        **{f"cold_start_{name}_ms": per_function[name] for name in FUNCTIONS},
        "cold_start_slowest_function_ms": max(per_function.values()),
        "peak_memory_mb": round(statistics.median(s["maxrss_kb"] for s in samples) / 1024, 1),
        # Fixed work (the uncounted standard-library imports), timed in the same children: it
        # moves with the host's load as the cold-start figures do, so it tells a slow host from
        # slower code when two reports are compared.
        "host_reference_ms": _median(samples, "runtime_preimports_ms"),
    }


def _unzip(archive: Path, target: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(target)
    return target


def _total(sample: dict[str, float]) -> float:
    return sample["import_app_ms"] + sample["import_handlers_ms"] + sample["dependencies_ms"]


def _median(samples: list[dict[str, Any]], key: str) -> float:
    return round(float(statistics.median(s[key] for s in samples)), 1)
