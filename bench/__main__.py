"""`make bench`: every benchmark, each printing ratios against baselines measured in the same run.

`python -m bench --quick` (or KUDOS_BENCH_QUICK=1) runs each on tiny sizes: a smoke run, whose
numbers mean nothing. `--endpoint-url URL` uses a running DynamoDB Local instead of starting one.
One DynamoDB Local serves the ingest, segment, sweep and sender benchmarks; each warms it up again before timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench import bench_dsl, bench_ingest, bench_segments, bench_send, bench_sweep, stats
from kudos.local.dynamodb import dynamodb_local


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--endpoint-url", default=None, help="a running DynamoDB Local (else one is started)")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick or stats.quick_requested() else []
    started = time.perf_counter()
    if args.endpoint_url:
        _run_all(args.endpoint_url, quick)
    else:
        with dynamodb_local() as url:
            _run_all(url, quick)
    print(f"(make bench took {time.perf_counter() - started:.0f} s)")


def _run_all(url: str, quick: list[str]) -> None:
    for name, run in (
        ("ingest", lambda: bench_ingest.main([*quick, "--endpoint-url", url])),
        ("segment rules", lambda: bench_dsl.main(quick)),
        ("segment sweep", lambda: bench_segments.main([*quick, "--endpoint-url", url])),
        ("steady and full sweeps", lambda: bench_sweep.main([*quick, "--endpoint-url", url])),
        ("campaign sender", lambda: bench_send.main([*quick, "--endpoint-url", url])),
    ):
        started = time.perf_counter()
        run()
        print(f"({name} took {time.perf_counter() - started:.0f} s)\n")


if __name__ == "__main__":
    main()
