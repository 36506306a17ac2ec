"""The settings of lost jobs (docs/REFERENCE.md §8, §9): job retry and the re-run of jobs whose
spot instance was interrupted, and the variables each then requires. Read by `settings.py`."""

from __future__ import annotations

from typing import Any

from chalicelib.env_values import EnvReader, bool_value
from chalicelib.rules.job_retry import JOB_RETRY_OFF, parse_job_retry_config


def lost_jobs(r: EnvReader, function: str | None,
              github_app: tuple[str, ...]) -> dict[str, Any]:
    """`job_retry_config` and `enable_spot_interruption_rerun`; a problem for each variable
    they make required for `function` that is not set."""
    retry = r.get("JOB_RETRY_CONFIG", JOB_RETRY_OFF, parse_job_retry_config)
    rerun = r.get("ENABLE_SPOT_INTERRUPTION_RERUN", True, bool_value)
    # Job retry sends messages back to the build queue; the webhook asks GitHub for re-runs.
    needs = {"scale_up": (("SQS_URL_WEBHOOK",), retry.enable, "job retry is on"),
             "webhook": (github_app, rerun, "ENABLE_SPOT_INTERRUPTION_RERUN is on")}
    names, needed, why = needs.get(function or "", ((), False, ""))
    if needed:
        r.problems.extend(f"{name}: required by {function} when {why}" for name in names
                          if r.raw(name) is None)
    return {"job_retry_config": retry, "enable_spot_interruption_rerun": rerun}
