"""An open-loop load generator for the query service: requests leave at a fixed offered rate,
whatever the server does, and each latency is measured from the request's intended send time, so
a server that falls behind shows it in the tail (no coordinated omission).

    python -m tests.bench.loadgen --target 127.0.0.1:50051 --dataset d --qps 1000 --seconds 20 --concepts tench

Prints one JSON line: {sent, ok, errors, p50_ms, p99_ms, max_ms, achieved_qps}."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

import grpc
import numpy as np

from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc


async def run(target: str, qps: float, seconds: float, make_request, method: str) -> dict:
    async with grpc.aio.insecure_channel(target) as channel:
        call = getattr(pb_grpc.FrequencyServiceStub(channel), method)
        await call(make_request(), timeout=30)  # warm: the first answer loads the dataset's totals
        latencies, errors = [], 0
        start = time.perf_counter() + 0.05
        total = int(qps * seconds)

        async def one(intended: float) -> None:
            nonlocal errors
            try:
                await call(make_request(), timeout=10)
                latencies.append(time.perf_counter() - intended)
            except grpc.RpcError:
                errors += 1

        tasks = []
        for i in range(total):
            intended = start + i / qps
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(intended)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"sent": total, "ok": len(latencies), "errors": errors, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "achieved_qps": len(latencies) / elapsed}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--qps", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concepts", nargs="+", required=True, help="names to draw from, one per request (or all with --batch)")
    parser.add_argument("--batch", action="store_true", help="BatchGetFrequencies with every name in one request")
    args = parser.parse_args(argv)
    if args.batch:
        method = "BatchGetFrequencies"
        make = lambda: pb.BatchGetFrequenciesRequest(datasets=[args.dataset], concepts=args.concepts)  # noqa: E731
    else:
        method = "GetFrequencies"
        make = lambda: pb.GetFrequenciesRequest(dataset=args.dataset, concepts=[random.choice(args.concepts)])  # noqa: E731
    print(json.dumps(asyncio.run(run(args.target, args.qps, args.seconds, make, method))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
