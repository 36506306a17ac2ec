"""`chalice.test.Client(app)` without `stage_name` sees the caller's environment only: no stage of
.chalice/config.json is chalice's default `dev`, so no placeholder is put over it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: the functions cache their settings per process.
SCRIPT = """
import json
from chalice.test import Client
from app import app

with Client(app) as client:
    response = client.http.post("/webhook", headers={"Content-Type": "application/json",
                                "X-GitHub-Event": "ping"}, body=b"{}")
print(json.dumps({"status": response.status_code}))
"""


def test_client_with_the_default_stage_keeps_the_callers_environment() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GHES_", "PARAMETER_", "SQS_", "ENVIRONMENT"))}
    env.update({"ENVIRONMENT": "mine", "AWS_EC2_METADATA_DISABLED": "true"})

    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    # The webhook's own variables are unset, as the caller left them: a configuration error,
    # not the 401 that the placeholder stage's values would have let it reach.
    assert {"status": 500} in lines
    problems = next(line["problems"] for line in lines if line.get("message") == "webhook delivery")
    assert any(p.startswith("SQS_URL_WEBHOOK: required") for p in problems)
    assert any(p.startswith("PARAMETER_GITHUB_APP_WEBHOOK_SECRET_NAME: required") for p in problems)
    assert not any(p.startswith("ENVIRONMENT") for p in problems)
