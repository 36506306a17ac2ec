"""`python -m bench`: run the workloads, print the table, write BENCHMARKS.md.

The workloads are the ones the scale-up, scale-down and demo issues name; each lives in its own
module and returns a dict of figures. Those that measure time run several times (medians).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.burst_concurrency import DEFAULT_CONCURRENCY
from bench.common import Figures, Result, Target, Workload, markdown, python_command, run_all
from bench.update import updated

ROOT = Path(__file__).resolve().parents[1]


def _lazy(module: str, function: str) -> Callable[[], Figures]:
    """A workload body imported when it runs, so one missing piece does not stop the others."""

    def run() -> Figures:
        figures: Figures = getattr(importlib.import_module(module), function)()
        return figures

    return run


BURST_TARGETS = (Target("cap_violations", "<=", 0), Target("runners_beyond_jobs", "<=", 0),
                 Target("github_calls_per_runner", "<=", 1.1),
                 Target("aws_calls_per_runner", "<=", 1.35))
BURST_ABOUT = (
    "Issue 14's burst: 1000 queued jobs, 50 for each of 20 orgs in turn (a matrix per org), cap "
    "100 per org, reuse runners with the queued check, under devstack's realistic latency "
    "profile (devstack/README.md). Each container is a process of its own (its own module "
    "state, as a Lambda container) fed as the SQS event source mapping feeds one: up to 10 "
    "messages, the batch item failures left for SQS. Wall time runs from all containers warm "
    "to the last batch handled; calls are the functions' (the poller's are not counted), "
    "warm, with what warming cost as `cold_extra_*`; violations are read from EC2 after the "
    "burst (nothing terminates during it). `runners_beyond_jobs` counts jobs launched for "
    "twice. In devstack, moto answers one EC2, SSM or DynamoDB call at a time and the GitHub "
    "fake counts its 900 points a minute per endpoint across installations. "
    "`moto_busy_s_by_service` is the time moto spent answering each service, one call at a "
    "time, on this 2-core machine where the containers compete for the same cores: when "
    "`moto_busy_s_max` is close to `wall_s`, the emulator, not the functions, bounds the wall "
    "time, and more containers cannot shorten it (AWS answers concurrent calls in parallel).")

WORKLOADS = (
    Workload(
        "cold_start", "Cold start and deployment package", _lazy("bench.cold_start",
                                                                 "bench_cold_start"),
        runs=1,  # the workload itself measures 9 fresh interpreters and reports medians
        targets=(Target("package_zipped_mb", "<", 10),
                 Target("cold_start_slowest_function_ms", "<", 300)),
        about="The package as shipped: `chalice package`, then scripts/precompile_package.py adds "
              "bytecode. Then, 9 times, a fresh interpreter (`-S -B`: it writes no bytecode, as "
              "on Lambda's read-only file system) over the unzipped package with the runtime's "
              "boto3 after it. The standard-library modules the runtime's bootstrap "
              "(awslambdaric) imports before the handler's module (logging, json, datetime, "
              "decimal, concurrent.futures...) are imported first and not counted; then, "
              "counted: `import app`, the function's service module and what its entry point's "
              "builder in `chalicelib/wiring.py` makes before the first call (its settings, "
              "every client and adapter it hands the service: EC2, SSM, SQS, the DynamoDB "
              "state table and the GitHub client, as each function needs them; `ec2_events` "
              "included). Each function runs in Lambda containers of its own, so the target "
              "is on the slowest function's container. "
              "`cold_start_total_ms` (with its parts `import_app_ms`, "
              "`import_handler_modules_ms`, `construct_dependencies_ms`) builds every "
              "handler's at once, which no container does: an upper bound, also measured over "
              "chalice's package without bytecode (what `chalice deploy` ships). Peak memory "
              "is the child's max RSS.",
    ),
    Workload(
        "burst_reuse", "Scale-up: burst of 100 jobs, one org, reuse runners",
        _lazy("bench.scale_up", "bench_burst_reuse"), runs=3,
        targets=(Target("github_calls_per_runner", "<=", 1.1),
                 Target("aws_calls_per_runner", "<=", 1.2)),
        about="100 queued jobs in batches of 10, queued check on. Reference system: 1.2 GitHub "
              "and 1.21 AWS calls per runner (its v2: about 3 and 5).",
    ),
    Workload(
        "burst_jit", "Scale-up: ephemeral JIT burst of 100 jobs",
        _lazy("bench.scale_up", "bench_burst_jit"), runs=1,
        about="JIT configs are writes paced to GitHub's secondary limit (about 180 a minute per "
              "endpoint; the reference system spaces writes a full second apart).",
    ),
    Workload(
        "burst_orgs", "Scale-up: burst of 100 jobs across 10 orgs",
        _lazy("bench.scale_up", "bench_burst_orgs"), runs=3,
    ),
    Workload(
        "burst_1000", "Scale-up: wall time for 1000 queued jobs",
        _lazy("bench.scale_up", "bench_burst_1000"), runs=1,
        targets=(Target("wall_s", "<", 60),),
    ),
    *(Workload(
        f"burst_owners_c{n}",
        f"Concurrent scale-up: 1000 jobs across 20 orgs, {n} container(s), realistic latency",
        _lazy("bench.burst_concurrency", f"bench_burst_owners_c{n}"), runs=1,
        targets=(*((Target("wall_s", "<=", 60),) if n == DEFAULT_CONCURRENCY else ()),
                 *BURST_TARGETS),
        about=(BURST_ABOUT if n == 1 else ""),
    ) for n in (1, 4, DEFAULT_CONCURRENCY)),
    Workload(
        "burst_owners_pool",
        f"Concurrent scale-up with the pool every 10 s: {DEFAULT_CONCURRENCY} containers",
        _lazy("bench.burst_concurrency", "bench_burst_owners_with_pool"), runs=1,
        targets=(Target("cap_violations", "<=", 0),),
        about="The same burst, with `adjust_pool` for org19 (the last org, whose jobs come "
              "last) at a pool size of the cap, run at once and every 10 s by a container of "
              "its own.",
    ),
    Workload(
        "burst_tight_cap",
        f"Concurrent scale-up over a cap of 40 per org: {DEFAULT_CONCURRENCY} containers",
        _lazy("bench.burst_concurrency", "bench_burst_tight_cap"), runs=1,
        targets=(Target("cap_violations", "<=", 0),),
        about="The same burst with a cap of 40 per org, below each org's 50 jobs: with a cap "
              "of 100 no org can pass it, so this is the run where containers that count an "
              "org's instances before each other's launches land would go over it. Reuse "
              "runners: the jobs over the cap are consumed (a busy runner takes them later).",
    ),
    Workload(
        "webhook_duplicates", "Webhook: 1000 deliveries, 100 of them repeated",
        _lazy("bench.webhook_duplicates", "bench_webhook_duplicates"), runs=1,
        targets=(Target("messages_enqueued", "==", 900),),
        about="900 `workflow_job` `queued` deliveries through chalice's test client, and after "
              "every ninth the one eight before it again with the same `X-GitHub-Delivery` "
              "(GitHub's redelivery). Without a latency profile: the handler's own time and "
              "devstack's. Each delivery enqueued once leaves 900 messages.",
    ),
    Workload(
        "burst_two_apps", "Scale-up: 1000-job burst with 2 GitHub Apps",
        _lazy("bench.apps", "bench_burst_two_apps"), runs=1,
        targets=(Target("app_share_spread", "<=", 0.02),),
        about="The same 1000 jobs (reuse runners, queued check on, no cap, one org) with one "
              "App, then with two installed on the org (REFERENCE §10): the calls each App "
              "made, how far their shares are apart (a fraction of all calls), and the calls "
              "per runner of both runs, which choosing an App must not raise.",
    ),
    Workload(
        "lost_jobs_retry", "Job retry: calls added per 100 jobs (10% still queued after the delay)",
        _lazy("bench.lost_jobs", "bench_job_retry"), runs=1,
        about="100 jobs of one org through scale_up with JOB_RETRY_CONFIG on (reuse runners, "
              "queued check on, no cap, warm): each consumed message goes back (one "
              "SendMessageBatch per batch's group), then, the delay elapsed and 90 of the jobs "
              "started meanwhile, the 100 retried messages come back: one job status call each, "
              "and the 10 still queued are launched for again (REFERENCE §8).",
    ),
    Workload(
        "lost_jobs_rerun", "Re-run of interrupted jobs: calls added per 100 jobs",
        _lazy("bench.lost_jobs", "bench_rerun"), runs=1,
        about="100 jobs' in_progress and completed deliveries through the webhook, 10 lost "
              "with an instance ec2_events recorded as interrupted, with "
              "ENABLE_SPOT_INTERRUPTION_RERUN on against off; the webhook's GitHub client "
              "starts cold (REFERENCE §9).",
    ),
    Workload(
        "scale_down_multi", "Scale-down over 3 runner configurations x 100 runners (half idle)",
        _lazy("bench.multi", "bench_scale_down_multi"), runs=1,
        targets=(Target("github_calls_over_budget", "<=", 0), Target("aws_calls", "<=", 5)),
        about="Issue 16: 3 configurations (REFERENCE §6) of one org, 100 registered runners each, "
              "every other one idle past the minimum running time, 5 stale token parameters; "
              "one warm scale_down run, the configuration list's minute gone by as it is for a "
              "schedule every 5 minutes (so its look, one GetParameter, is counted). The "
              "budget is the calls of one configuration's scale-down over the same 300 "
              "runners, laid down again as one configuration, but its DELETEs "
              "(`github_calls_one_config_without_deletes`), plus one DELETE per removal. "
              "`aws_calls` includes the Query of pending re-runs every run makes with "
              "ENABLE_SPOT_INTERRUPTION_RERUN on (§9), one configuration or many "
              "(`aws_calls_one_config`).",
    ),
    Workload(
        "burst_multi", "Scale-up: 300-job mixed burst across 3 runner configurations",
        _lazy("bench.multi", "bench_burst_multi"), runs=1,
        targets=(Target("github_calls_per_runner", "<=", 1.1),),
        about="Issue 16: 300 jobs of one org, linux-x64, linux-arm64 and GPU in turn (every "
              "batch of 10 mixes the three), their messages carrying `runnerConfig`, through "
              "one warm scale_up container in batches of 10; x64 and arm64 reuse runners with "
              "the queued check, GPU ephemeral JIT runners, no cap. The GPU's 100 JIT "
              "configurations are paced by the shared write budget (36 per 15 s), so GPU "
              "messages come back for retry (after 1 s here) and their retries count in "
              "`aws_calls_per_runner`, which varies with timing. The `*_gpu_without_jit` "
              "figures are the same burst with GPU runners on registration tokens: one "
              "CreateFleet and one reservation per configuration per batch, what routing to "
              "three configurations costs beside one.",
    ),
    Workload(
        "scale_down_200", "Scale-down over 200 runners (50 idle, 150 busy)",
        _lazy("bench.scale_down", "bench_scale_down_200"), runs=3,
        targets=(Target("github_calls", "<=", 55), Target("aws_calls", "<=", 4)),
        about="Reference system over 20 idle runners: 43 GitHub calls, 24 AWS calls, 20 s.",
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the chosen workloads; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=[w.name for w in WORKLOADS],
                        help="run only this workload (repeatable)")
    parser.add_argument("--runs", type=int, default=None,
                        help="override every workload's number of runs")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="where to write the report (default %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--update", action="store_true",
                        help="rewrite only the chosen workloads' sections of the report, "
                             "keeping the others (bench/update.py)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed (a failed workload always does)")
    args = parser.parse_args(argv)
    chosen = [w for w in WORKLOADS if not args.only or w.name in args.only]
    output = None if args.no_write else args.output
    render: Callable[[Sequence[Result], str], str] = markdown
    if args.update and output is not None and output.exists():
        old = output.read_text(encoding="utf-8")
        titles = [(w.name, w.title) for w in WORKLOADS]

        def update(results: Sequence[Result], command: str) -> str:
            return updated(old, results, titles, command)

        render = update
    return run_all(chosen, args.runs, output, "make bench (" + python_command() + ")",
                   strict=args.strict, render=render)


if __name__ == "__main__":
    sys.exit(main())
