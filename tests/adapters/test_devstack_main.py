"""`python -m devstack`: prints the shell exports of a running devstack and serves until stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_devstack_prints_exports_that_reach_a_deployed_stack() -> None:
    process = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line[len("export "):].strip().partition("=")
                exports[name] = value
            if line.startswith("# Ctrl-C"):
                break
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert exports["GHES_URL"].startswith("http://127.0.0.1:")
        assert exports["AWS_EC2_METADATA_DISABLED"] == "true"
        ssm = boto3.client("ssm", endpoint_url=exports["AWS_ENDPOINT_URL"],
                           region_name=exports["AWS_DEFAULT_REGION"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        app_id = ssm.get_parameter(Name=exports["PARAMETER_GITHUB_APP_ID_NAME"])
        assert app_id["Parameter"]["Value"].isdigit()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_an_unknown_latency_profile_is_refused_before_anything_starts() -> None:
    result = subprocess.run([sys.executable, "-m", "devstack", "--latency", "slow"], cwd=ROOT,
                            text=True, capture_output=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "unknown latency profile 'slow'; known: off, realistic" in result.stderr
