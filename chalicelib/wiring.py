"""Where the functions get their dependencies: built lazily, cached per container, resettable.

Only `app.py` calls this module: one builder per entry point (`scale_up()`, ...) returns the
adapters its service receives. Nothing is created at import time: a warm Lambda reuses what the
first invocation built; in tests devstack must be up (and the environment set) first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.logs import get_logger
from chalicelib.runner_configs import load_top_settings
from chalicelib.settings import FunctionName, Settings

if TYPE_CHECKING:
    from chalicelib.aws.state import StateTable
    from chalicelib.github.client import GitHubClient, GitHubConfig
    from chalicelib.services.capacity import CapacityLedger
    from chalicelib.services.ec2_events import Ec2EventsDeps
    from chalicelib.services.images import ImageResolver
    from chalicelib.services.pool import PoolDeps
    from chalicelib.services.runner_binaries import SyncDeps
    from chalicelib.services.runner_configs import RunnerConfigSource
    from chalicelib.services.scale_down import ScaleDownDeps
    from chalicelib.services.scale_up import ScaleUpDeps
    from chalicelib.services.webhook import WebhookDeps
    from chalicelib.services.write_budget import WriteBudget

log = get_logger(__name__)
_settings: dict[str, Settings] = {}
_clients: dict[str, Any] = {}
_github: dict[str, GitHubClient] = {}
_objects: dict[str, Any] = {}
_sessions: dict[str, Any] = {}
# The botocore loaders outlive reset(): they cache the models read from disk (a client costs up
# to a second without). Sessions do not: a session reads region, endpoint and credentials from
# the os.environ it was created under, which chalice's test client swaps during each call.
_loaders: dict[str, Any] = {}
AWS_MODELS = Path(__file__).resolve().parent / "aws_models"
T = TypeVar("T")


def settings(function: FunctionName) -> Settings:
    """The validated settings of `function`, read from the environment once per container."""
    if function not in _settings:
        _settings[function] = load_top_settings(os.environ, function)
        from chalicelib import metrics

        metrics.configure(_settings[function].metrics_namespace,
                          enabled=_settings[function].enable_metrics)
    return _settings[function]


def aws(service: str, *, quick: bool = False) -> Any:
    """A botocore client of `service`, created once per container.

    Endpoints, region and credentials come from the standard AWS variables. Adaptive retries
    absorb throttling (SSM allows about 40 TPS per account, EC2 has a token bucket), and the
    timeouts keep a stuck call inside the function's own timeout. `quick` clients (the webhook)
    retry once and wait little: GitHub counts a delivery as failed after 10 s, the webhook makes
    up to two calls (secret, queue), and a fast 5xx is better than a late 2xx.
    """
    key = f"{service}:quick" if quick else service
    if key not in _clients:
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 2} if quick
                        else {"mode": "adaptive", "max_attempts": 8},
                        connect_timeout=1 if quick else 5, read_timeout=2 if quick else 20,
                        max_pool_connections=20)
        if service == "s3":
            # The hourly binaries sync streams with boto3 (upload_fileobj) over botocore's whole
            # S3 model; elsewhere plain botocore clients spare boto3's ~150 ms of a cold start.
            import boto3

            if "boto3" not in _sessions:  # once: boto3 registers its handlers on the session
                _sessions["boto3"] = boto3.session.Session(
                    botocore_session=_botocore_session("botocore"))
            _clients[key] = _sessions["boto3"].client("s3", config=config)
        else:
            _clients[key] = _trimmed_client(service, config)
    return _clients[key]


def _trimmed_client(service: str, config: Any) -> Any:
    """A client on chalicelib/aws_models, or on botocore's own data if they do not serve it."""
    from botocore.exceptions import DataNotFoundError, UnknownServiceError

    try:
        return _botocore_session().create_client(service, config=config)
    except (DataNotFoundError, UnknownServiceError) as error:
        # A Lambda runtime's botocore newer than the one the models were trimmed from may look
        # for a file they lack: slower to start is better than not starting.
        from botocore import __version__ as botocore_version

        log.warning("trimmed AWS models incomplete; using botocore's own data",
                                     service=service, botocore_version=botocore_version,
                                     error=str(error))
        return _botocore_session("botocore").create_client(service, config=config)


def _botocore_session(models: str = "trimmed") -> Any:
    """A botocore session whose loader reads chalicelib/aws_models (`trimmed`) or the installed
    botocore's data (`botocore`)."""
    if models not in _sessions:
        import botocore.loaders
        import botocore.session

        if models not in _loaders:
            # The trimmed loader reads only chalicelib/aws_models (scripts/trim_botocore_models.py):
            # the operations we call, their endpoint rules and our services' endpoints; botocore's
            # own data costs ~100 ms of every cold start (EC2's whole model, ~400 folders).
            _loaders[models] = botocore.loaders.Loader(
                extra_search_paths=[str(AWS_MODELS)], include_default_search_paths=False,
            ) if models == "trimmed" else botocore.loaders.Loader()
        core = botocore.session.get_session()
        core.register_component("data_loader", _loaders[models])
        _sessions[models] = core
    return _sessions[models]


def cached(name: str, build: Callable[[], T]) -> T:
    """The object `build()` returns, built once per container under `name` (reset forgets it)."""
    if name not in _objects:
        _objects[name] = build()
    return _objects[name]  # type: ignore[no-any-return]


def github_config(values: Settings, function: FunctionName,
                  scopes: tuple[Settings, ...] = ()) -> GitHubConfig:
    """The GitHub adapter's configuration for `function`, tokens limited to what it needs
    (what every runner configuration in `scopes` needs)."""
    from chalicelib.github.client import GitHubConfig
    from chalicelib.rules.permissions import all_token_permissions

    return GitHubConfig(app_id_parameters=values.parameter_github_app_id_name,
                        app_key_parameters=values.parameter_github_app_key_base64_name,
                        ghes_url=values.ghes_url, ssl_verify=values.ghes_ssl_verify,
                        runner_group_cache_path=f"{values.ssm_config_path}/runner-group",
                        permissions=all_token_permissions(scopes or (values,), function))


def github(function: FunctionName, quick: bool = False) -> GitHubClient:
    """The GitHub App client of `function`, one per container: its token and installation
    caches, tokens limited to what `function` needs (one client per function in a process).
    `quick`: its SSM reads (the App key) retry little, as the webhook's calls do."""
    if function not in _github:
        from chalicelib.aws.ssm import Ssm
        from chalicelib.github.client import GitHubClient

        scopes = runner_configs(function).get().scopes
        _github[function] = GitHubClient(github_config(settings(function), function, scopes),
                                         Ssm(aws("ssm", quick=quick)))
    return _github[function]


def state_table(function: FunctionName) -> StateTable:
    """The state table adapter of `function`'s settings."""
    from chalicelib.aws.state import StateTable

    return StateTable(aws("dynamodb"), settings(function).state_table_name)


def runner_configs(function: FunctionName) -> RunnerConfigSource:
    """The runner configurations of `function` (§6), looked at again at most once a minute."""
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.runner_configs import RunnerConfigSource

    values, env = settings(function), dict(os.environ)
    return cached(f"runner-configs:{function}", lambda: RunnerConfigSource(
        values, env, function, Ssm(aws("ssm", quick=function == "webhook"))))


def capacity(function: FunctionName) -> CapacityLedger:
    """The container's view of the shared cap: kept warm, it reserves with one write."""
    from chalicelib.services.capacity import CapacityLedger

    values = settings(function)
    return cached(f"capacity:{values.state_table_name}",
                  lambda: CapacityLedger(state_table(function), values.environment))


def write_budget(function: FunctionName) -> WriteBudget:
    """GitHub's write budget shared by the deployment's containers, in the state table."""
    from chalicelib.services.write_budget import WriteBudget

    return WriteBudget(state_table(function), settings(function).environment)


def scale_up() -> ScaleUpDeps:
    """What `scale_up` works with (ConfigError when the configuration is bad)."""
    from chalicelib.aws.ec2 import Ec2
    from chalicelib.aws.sqs import BuildQueue
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.scale_up import ScaleUpDeps

    values, configs = settings("scale_up"), runner_configs("scale_up")
    retry = any(c.job_retry_config.enable for c in (values, *configs.get().scopes))
    queue = BuildQueue(aws("sqs"), values.sqs_url_webhook) if retry else None
    return ScaleUpDeps(values, Ec2(aws("ec2")), Ssm(aws("ssm"), values.runner_token_kms_key_id),
                       github("scale_up"), capacity("scale_up"), write_budget("scale_up"),
                       image_resolver(), queue, configs)


def scale_down() -> ScaleDownDeps:
    """What `scale_down` works with (ConfigError when the configuration is bad)."""
    from chalicelib.aws.ec2 import Ec2
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.scale_down import ScaleDownDeps

    return ScaleDownDeps(settings("scale_down"), Ec2(aws("ec2")), Ssm(aws("ssm")),
                         github("scale_down"), state_table("scale_down"),
                         runner_configs("scale_down").get())


def adjust_pool() -> PoolDeps:
    """What `adjust_pool` works with (ConfigError when the configuration is bad)."""
    from chalicelib.aws.ec2 import Ec2
    from chalicelib.aws.sqs import BuildQueue
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.pool import PoolDeps

    values = settings("adjust_pool")
    queue = BuildQueue(aws("sqs"), values.sqs_url_webhook) if values.sqs_url_webhook else None
    return PoolDeps(values, Ec2(aws("ec2")), Ssm(aws("ssm"), values.runner_token_kms_key_id),
                    github("adjust_pool"), capacity("adjust_pool"), queue, write_budget(
                        "adjust_pool"), image_resolver(), runner_configs("adjust_pool"))


def webhook() -> WebhookDeps:
    """What `webhook` works with: quick clients, as GitHub gives a delivery 10 s."""
    from chalicelib.aws.sqs import BuildQueue
    from chalicelib.aws.ssm import Ssm
    from chalicelib.aws.state import StateTable
    from chalicelib.services.webhook import WebhookDeps
    from chalicelib.services.webhook_secret import WebhookSecrets

    values, configs = settings("webhook"), runner_configs("webhook").get()
    name = values.parameter_github_app_webhook_secret_name
    previous = values.parameter_github_app_webhook_secret_previous_name
    secrets = cached(f"webhook-secret:{name}:{previous}", lambda: WebhookSecrets(
        Ssm(aws("ssm", quick=True)), name, previous_name=previous))
    table = StateTable(aws("dynamodb", quick=True), values.state_table_name)
    reruns = None
    if values.enable_spot_interruption_rerun:
        from chalicelib.services.rerun import Reruns

        # The GitHub client is built on the first re-run only: most deliveries need none.
        reruns = Reruns(values, table, lambda: github("webhook", quick=True),
                        prefixes=[s.runner_name_prefix for s in configs.scopes])
    return WebhookDeps(values, secrets, BuildQueue(aws("sqs", quick=True), values.sqs_url_webhook),
                       table, reruns, configs)


def sync_runner_binaries() -> SyncDeps:
    """What `sync_runner_binaries` works with: S3, and actions/runner's releases read without
    credentials from github.com or `RUNNER_RELEASES_API_URL` (never GHES)."""
    from chalicelib.github.releases import RunnerReleases
    from chalicelib.services.runner_binaries import SyncDeps

    values = settings("sync_runner_binaries")
    releases = RunnerReleases(values.runner_releases_api_url,
                              prerelease=values.runner_allow_prerelease_binaries)
    return SyncDeps(values, releases.latest, aws("s3"))


def ec2_events() -> Ec2EventsDeps:
    """What `ec2_events` works with (ConfigError when the configuration is bad)."""
    from chalicelib.aws.ec2 import Ec2
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.ec2_events import Ec2EventsDeps

    return Ec2EventsDeps(settings("ec2_events"), Ec2(aws("ec2")), Ssm(aws("ssm")),
                         github("ec2_events"), state_table("ec2_events"),
                         runner_configs("ec2_events").get())


def image_resolver() -> ImageResolver:
    """The container's AMI resolver (its 15-minute cache of filter lookups outlives invocations)."""
    from chalicelib.aws.ec2 import Ec2
    from chalicelib.aws.ssm import Ssm
    from chalicelib.services.images import ImageResolver

    return cached("image_resolver", lambda: ImageResolver(Ec2(aws("ec2")), Ssm(aws("ssm"))))


def reset() -> None:
    """Forget every cached object (tests do this between cases)."""
    from chalicelib import metrics

    metrics.configure()
    _settings.clear()
    _clients.clear()
    _github.clear()
    _objects.clear()
    _sessions.clear()
