"""Which GitHub permissions each function's installation tokens need (R-AUTH-05)."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.settings import FunctionName, Settings


def token_permissions(settings: Settings, function: FunctionName) -> dict[str, str]:
    """What `function`'s installation tokens need: writing self-hosted runners, of orgs (the
    pool's are always) or of repositories (`administration`); reading jobs for scale-up's
    queued check and job retry (§8); and re-running jobs (`actions: write`, §9) for the webhook
    and scale-down when ENABLE_SPOT_INTERRUPTION_RERUN is on."""
    reruns = settings.enable_spot_interruption_rerun
    if function == "webhook":
        return {"actions": "write"} if reruns else {}
    org = settings.enable_organization_runners or function == "adjust_pool"
    runners = "organization_self_hosted_runners" if org else "administration"
    reads_jobs = function == "scale_up" and (settings.enable_job_queued_check
                                             or settings.job_retry_config.enable)
    actions = ({"actions": "write"} if function == "scale_down" and reruns
               else {"actions": "read"} if reads_jobs else {})
    return {runners: "write", **actions}


def all_token_permissions(scopes: Iterable[Settings], function: FunctionName) -> dict[str, str]:
    """What the tokens of several runner configurations need together (§6: org and repository
    runners side by side); a write covers a read."""
    merged: dict[str, str] = {}
    for scope in scopes:
        for name, level in token_permissions(scope, function).items():
            if merged.get(name) != "write":
                merged[name] = level
    return merged
