"""Scan pages decoded from the raw HTTP body: the client's own call, without botocore's shape walk.

Why: a sweep's largest client-side cost was botocore turning each Scan page into Python. Its JSON
parser first ``json.loads`` the body (fast, in C), then walks the result against the output shape,
one Python call per attribute value of every item (``_parse_shape``) to rebuild the very same
dicts; boto/boto3#2928 and boto/botocore#3238 measure the same. For DynamoDB's ``json`` protocol the
low-level items come out of ``json.loads`` already as botocore returns them, except for binary
values (``B``, ``BS``), which botocore base64-decodes and we would leave as text: kudos never
stores one (kudos/store/codec.py), and our codec reads only the attributes it wrote.

How: the request still goes through ``client.scan``: parameter validation, signing, the endpoint,
adaptive retries (throttling, 5xx, the CRC32 check of the body), ClientError mapping and every
other event. One handler on ``before-parse.dynamodb.Scan`` (botocore/endpoint.py emits it with
the response dict before it parses) takes a successful body, decodes it with ``json.loads`` into
``customized_response_dict`` (which botocore merges into the parsed response), and empties the
body, so the parser only adds ``ResponseMetadata``. Error responses (status >= 301, which the
parser treats as errors) are left alone: botocore parses them as always, so ``needs-retry`` sees
the throttling code and the caller gets the usual ``ClientError``. The handler acts only inside
``raw_scan`` calls of its own thread: every other Scan on the shared client is parsed as usual.

Why not orjson: ``json.loads`` already removes most of the cost (``make bench`` prints the
ratio), and one more compiled dependency in the Lambda layer buys a fraction of what remains.
Why not a private call (``client._endpoint.make_request``) or monkeypatching the JSON parser
(every client, every operation): both break silently on a botocore upgrade; the event is public.
"""

from __future__ import annotations

import json
import threading
from typing import Any

EVENT = "before-parse.dynamodb.Scan"
_HANDLER_ID = "kudos.store.fast_scan"
# The media type of DynamoDB's "json" protocol; anything else (a future CBOR protocol, say) is
# left to botocore's parser.
_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
# botocore's parser treats a status >= 301 as an error response (botocore/parsers.py).
_FIRST_ERROR_STATUS = 301

_calls = threading.local()
# The decoder of a page body (a name of its own: tests count its calls).
decode_body = json.loads


def supports_raw_scan(client: Any) -> bool:
    """Whether ``client`` is a botocore DynamoDB client (a stand-in without events is not)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    return events is not None and hasattr(events, "register")


def _take_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if not getattr(_calls, "active", False) or response_dict.get("status_code", 0) >= _FIRST_ERROR_STATUS:
        return
    content_type = str(response_dict.get("headers", {}).get("content-type", _JSON_CONTENT_TYPE))
    body = response_dict.get("body")
    if not body or not content_type.startswith(_JSON_CONTENT_TYPE):
        return
    customized_response_dict.update(decode_body(body))
    response_dict["body"] = b""  # the parser reads an empty body as {}: it only adds ResponseMetadata


def install(client: Any) -> None:
    """Register the handler on ``client`` (idempotent: one registration per client)."""
    client.meta.events.register(EVENT, _take_body, unique_id=_HANDLER_ID)


def raw_scan(client: Any, **request: Any) -> dict[str, Any]:
    """``client.scan(**request)``, its page decoded by ``json.loads`` alone; the same dict otherwise
    (Items, Count, ScannedCount, LastEvaluatedKey, ConsumedCapacity, ResponseMetadata)."""
    install(client)
    _calls.active = True
    try:
        response: dict[str, Any] = client.scan(**request)
    finally:
        _calls.active = False
    return response
