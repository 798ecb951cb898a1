"""The stored data a read-only command works on: `kudos segments members|explain`, `kudos report`.

By default DynamoDB Local on the data `make demo` leaves in .kudos-data (a missing directory is an
error, not an empty answer); ``--endpoint-url`` names any DynamoDB; ``--embedded`` (where offered) an
empty in-memory one; with DYNAMODB_ENDPOINT_URL set and neither option, the handlers' own settings.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kudos.core.settings import DEFAULT_SEGMENTS_DIR
from kudos.local import LocalError
from kudos.local.environment import DEFAULT_DATA_DIR

if TYPE_CHECKING:
    from dsl import SegmentSet
    from kudos.core.settings import Settings
    from kudos.store.dynamo import Store


def add_store_arguments(parser: argparse.ArgumentParser, *, embedded: bool = False) -> None:
    """--segments DIR, and one of --endpoint-url URL, --data DIR (and --embedded when ``embedded``)."""
    parser.add_argument(
        "--segments", type=Path, metavar="DIR", help=f"rule files (default: {DEFAULT_SEGMENTS_DIR})"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint-url",
        help="DynamoDB to read (DynamoDB Local or AWS); default: DYNAMODB_ENDPOINT_URL if set, else --data",
    )
    where.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"the DynamoDB Local data of `kudos serve --data DIR` (default {DEFAULT_DATA_DIR}, "
        "where `make demo` leaves its data)",
    )
    if embedded:
        where.add_argument(
            "--embedded",
            action="store_true",
            help="an embedded, empty DynamoDB (in memory, gone afterwards): no Java, no data",
        )


@contextmanager
def stored_data(args: argparse.Namespace) -> Iterator[tuple[Store, SegmentSet, Settings]]:
    """The store, the compiled segments and the settings that ``add_store_arguments``' options name."""
    from kudos.local.environment import local_runtime
    from kudos.runtime import reset, services
    from kudos.segments.queries import deployed_segments

    embedded = getattr(args, "embedded", False)
    if (
        args.endpoint_url is None
        and args.data is None
        and not embedded
        and os.environ.get("DYNAMODB_ENDPOINT_URL")
    ):
        reset()
        svc = services()
        yield svc.store, deployed_segments(args.segments or svc.settings.segments_dir), svc.settings
        return
    data = args.data
    if args.endpoint_url is None and not embedded:
        data = data or DEFAULT_DATA_DIR
        if not data.is_dir():
            # Reading an empty new database would answer "0 members": say what is missing instead.
            raise LocalError(
                f"no local data in {data}/: run `make demo` (or `kudos serve --data {data}`) first, "
                "or name a DynamoDB with --endpoint-url"
            )
    with local_runtime(endpoint_url=args.endpoint_url, data_dir=data, segments_dir=args.segments) as settings:
        yield services().store, deployed_segments(settings.segments_dir), settings
