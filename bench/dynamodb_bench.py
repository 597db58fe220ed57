#!/usr/bin/env python3
"""DynamoDB side by side: raw boto3 (the floor) and storeroom's sync store, same endpoint,
same process, same run.

    python bench/dynamodb_bench.py [--endpoint http://127.0.0.1:45679] [--n 300] [--repeat 3]

Workloads: create one item (conditional put), get by key, read_batch of 100 keys, and a
Query of one partition. Prints ops/s (median of ``--repeat``), storeroom's ratio to raw
boto3, and the number of requests each storeroom call sent (read_batch of 100 must be 1).
Only loopback endpoints are accepted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from storeroom import open_store, stored  # noqa: E402


@stored(key=("owner", "num"))
class Item:
    owner: str
    num: int
    title: str = ""
    score: float = 0.0


def raw_client(endpoint: str) -> Any:
    import boto3
    return boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench")


def timed(fn: Any, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=os.environ.get("DYNAMODB_ENDPOINT",
                                                         "http://127.0.0.1:45679"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    host = urlsplit(args.endpoint).hostname
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("only a loopback endpoint is allowed")
    n = args.n
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    url = f"dynamodb://?endpoint_url={args.endpoint}&region=us-east-1&table_prefix={prefix}"
    store = open_store(Item, url)
    store.create_tables()
    table = prefix + "item"
    raw = raw_client(args.endpoint)
    raw.create_table(TableName=table + "_raw", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "owner", "KeyType": "HASH"},
                                {"AttributeName": "num", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "owner", "AttributeType": "S"},
                                           {"AttributeName": "num", "AttributeType": "N"}])
    raw_table = table + "_raw"

    calls: Counter[str] = Counter()
    client = store._b.conn.get()
    client.meta.events.register("before-call.dynamodb",
                                lambda model, **kw: calls.update([model.name]))

    results: dict[str, dict[str, list[float]]] = {}
    requests: dict[str, float] = {}

    def record(work: str, lib: str, rate: float) -> None:
        results.setdefault(work, {}).setdefault(lib, []).append(rate)

    batches = max(1, n // 100)
    for rep in range(args.repeat):
        owner = f"o{rep}"

        def raw_create(owner: str = owner) -> None:
            for i in range(n):
                raw.put_item(TableName=raw_table, Item={
                    "owner": {"S": owner}, "num": {"N": str(i)}, "title": {"S": f"t{i}"},
                    "score": {"N": repr(i / 3)}},
                    ConditionExpression="attribute_not_exists(#o)",
                    ExpressionAttributeNames={"#o": "owner"})

        def sr_create(owner: str = owner) -> None:
            for i in range(n):
                store.create(Item(owner=owner, num=i, title=f"t{i}", score=i / 3))

        def raw_get(owner: str = owner) -> None:
            for i in range(n):
                raw.get_item(TableName=raw_table, ConsistentRead=True,
                             Key={"owner": {"S": owner}, "num": {"N": str(i)}})

        def sr_get(owner: str = owner) -> None:
            for i in range(n):
                store.read((owner, i))

        def raw_batch(owner: str = owner) -> None:
            for b in range(batches):
                keys = [{"owner": {"S": owner}, "num": {"N": str(i)}}
                        for i in range(b * 100, b * 100 + 100)]
                raw.batch_get_item(RequestItems={raw_table: {"Keys": keys,
                                                             "ConsistentRead": True}})

        def sr_batch(owner: str = owner) -> None:
            for b in range(batches):
                store.read_batch([(owner, i) for i in range(b * 100, b * 100 + 100)])

        def raw_query(owner: str = owner) -> None:
            for _ in range(20):
                raw.query(TableName=raw_table, KeyConditionExpression="#o = :o",
                          ExpressionAttributeNames={"#o": "owner"}, Limit=21,
                          ExpressionAttributeValues={":o": {"S": owner}},
                          ScanIndexForward=False, ConsistentRead=True)

        def sr_query(owner: str = owner) -> None:
            for _ in range(20):
                store.search(owner=owner, order_by="-num", limit=20)

        for work, raw_fn, sr_fn, ops in [("create", raw_create, sr_create, n),
                                         ("get", raw_get, sr_get, n),
                                         ("read_batch(100)", raw_batch, sr_batch, batches),
                                         ("page of 20 (Query)", raw_query, sr_query, 20)]:
            record(work, "boto3", timed(raw_fn, ops))
            calls.clear()
            record(work, "storeroom", timed(sr_fn, ops))
            requests[work] = sum(calls.values()) / ops

    print(f"endpoint {args.endpoint}, n={n}, median of {args.repeat}")
    print(f"{'workload':<20} {'boto3 ops/s':>12} {'storeroom ops/s':>16} {'ratio':>7} "
          f"{'requests/op':>12}")
    for work, libs in results.items():
        b = statistics.median(libs["boto3"])
        s = statistics.median(libs["storeroom"])
        print(f"{work:<20} {b:>12.0f} {s:>16.0f} {s / b:>7.2f} {requests[work]:>12.2f}")
    store._b.drop_tables()
    raw.delete_table(TableName=raw_table)
    store.close()


if __name__ == "__main__":
    main()
