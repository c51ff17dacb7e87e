"""Verbs for Ray and serving: ``lightbox tune``, ``lightbox jobs`` and ``lightbox server``.

Light to import (argparse only); each verb imports Ray or MLflow when it runs.
"""

from __future__ import annotations

import argparse
import sys

from engine.run_flags import add_run_flags, config_from_flags

TOKEN_HELP = (
    "file holding the cluster's auth token (else where Ray keeps it: $RAY_AUTH_TOKEN, "
    "$RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)"
)


def _cmd_tune(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.data.problems import DatasetError
    from engine.orchestration.errors import SearchError, TrainingError
    from engine.orchestration.tune import search

    try:
        config = config_from_flags(args)
        if config.search is None or not config.search.space:
            raise SearchError(
                f"{args.config or 'the run configuration'}: no search.space to search "
                "(add a search: section with space: {optim.lr: {type: loguniform, ...}})"
            )
        address = args.ray_address or config.compute.ray_address
        if is_job_address(address):
            return submit_from_args(config, args, "tune")
        if address:
            config = config.with_overrides({"compute.ray_address": address})
        result = search(config, tracking_uri=args.tracking_uri)
    except (ConfigError, DatasetError, TrainingError, SearchError, ValueError, OSError) as exc:
        print(f"lightbox tune: {exc}", file=sys.stderr)
        return 2
    return 3 if result.status == "KILLED" else 0


def is_job_address(address: str | None) -> bool:
    """A dashboard address (http://host:8265): the run goes to the cluster as a Ray job."""
    return bool(address) and address.startswith(("http://", "https://"))


def submit_from_args(config, args: argparse.Namespace, verb: str) -> int:
    """``lightbox train|tune --ray-address URL``: submit, print the job id, with --wait follow it."""
    from engine.orchestration.ray_jobs import RayJobError, follow_logs, read_token, submit_job, wait_for

    address = args.ray_address or config.compute.ray_address
    try:
        token = read_token(args.ray_token_file)
        job_id = submit_job(config, address, verb=verb, token=token)
        print(f"submitted Ray job {job_id} to {address}", flush=True)
        if not args.wait:
            return 0
        for chunk in follow_logs(address, job_id, token):
            print(chunk, end="", flush=True)
        status = wait_for(address, job_id, token)
    except RayJobError as exc:
        print(f"lightbox {verb}: {exc}", file=sys.stderr)
        return 2
    print(f"Ray job {job_id}: {status}", file=sys.stderr)
    return {"SUCCEEDED": 0, "STOPPED": 3}.get(status, 1)


def add_job_flags(parser: argparse.ArgumentParser) -> None:
    """--ray-address / --ray-token-file / --wait (for train and tune)."""
    parser.add_argument("--ray-token-file", help=TOKEN_HELP)
    parser.add_argument(
        "--wait", action="store_true", help="with a dashboard --ray-address: follow the job's logs until it ends"
    )


def _cmd_jobs(args: argparse.Namespace) -> int:
    import json

    from engine.orchestration.ray_jobs import RayJobError, job_logs, list_jobs, read_token, stop_job

    try:
        if args.action != "list" and not args.job_id:
            raise RayJobError(f"lightbox jobs {args.action} needs a job id (see lightbox jobs list)")
        token = read_token(args.ray_token_file)
        if args.action == "list":
            for job in list_jobs(args.ray_address, token):
                print(json.dumps(job))
        elif args.action == "logs":
            print(job_logs(args.ray_address, args.job_id, token), end="")
        else:
            ok = stop_job(args.ray_address, args.job_id, token)
            print(f"Ray job {args.job_id}: {'stop requested' if ok else 'already ended'}")
    except RayJobError as exc:
        print(f"lightbox jobs: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the SDK's error for an unknown job id
        print(f"lightbox jobs: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


def _cmd_server(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.orchestration.server import serve
    from engine.workspace import default_workspace

    workspace = Path(args.workspace).expanduser() if args.workspace else default_workspace()
    return serve(workspace, args.host, args.port)


def add_verbs(sub: argparse._SubParsersAction) -> None:
    tu = sub.add_parser(
        "tune",
        help="hyper-parameter search with Ray Tune (each trial an MLflow run)",
        description="Searches the config's search: section; prints a final JSON line with the "
        "parent run, the best trial and every trial's status. Exit status: 0 done, "
        "2 bad input or no usable trial, 3 stopped (finished trials kept).",
    )
    add_run_flags(
        tu,
        search=True,
        config="run configuration YAML with a search: section (flags override it)",
        epochs="epochs per trial (ASHA's longest)",
        run_name="name of the search's parent run",
    )
    tu.add_argument(
        "--ray-address",
        help="Ray cluster: 'auto' or ray://host:port to attach to, or a dashboard "
        "URL (http://host:8265) to submit the search as a job",
    )
    add_job_flags(tu)
    tu.set_defaults(func=_cmd_tune)

    jo = sub.add_parser("jobs", help="Ray jobs on a cluster: list, logs JOB, stop JOB")
    jo.add_argument("action", choices=["list", "logs", "stop"], nargs="?", default="list")
    jo.add_argument("job_id", nargs="?", help="job id (for logs and stop)")
    jo.add_argument("--ray-address", required=True, help="the cluster's dashboard URL, e.g. http://host:8265")
    jo.add_argument("--ray-token-file", help=TOKEN_HELP)
    jo.set_defaults(func=_cmd_jobs)

    se = sub.add_parser("server", help="MLflow tracking server on the workspace (Ctrl-C stops it)")
    se.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    se.add_argument("--port", type=int, default=5000)
    se.add_argument("--workspace", help="workspace folder (its mlflow.db and mlartifacts/)")
    se.set_defaults(func=_cmd_server)
