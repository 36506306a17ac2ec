"""Which GitHub permissions each function's installation tokens need (R-AUTH-05)."""

from __future__ import annotations

from chalicelib.settings import FunctionName, Settings


def token_permissions(settings: Settings, function: FunctionName) -> dict[str, str]:
    """What `function`'s installation tokens need: writing self-hosted runners, of orgs (the
    pool's are always) or of repositories (`administration`), and reading jobs for scale-up's
    queued check."""
    org = settings.enable_organization_runners or function == "adjust_pool"
    runners = "organization_self_hosted_runners" if org else "administration"
    reads_jobs = function == "scale_up" and settings.enable_job_queued_check
    return {runners: "write", **({"actions": "read"} if reads_jobs else {})}
