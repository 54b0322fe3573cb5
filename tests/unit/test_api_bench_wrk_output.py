"""``bench/api_throughput.py`` reads wrk's figures from the right rows (issue 21: the Stdev column's
``75.50%`` must not be taken for a percentile)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api_throughput.py"

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:41234/v1.0/extensions/x?token=t
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    17.43ms    9.01ms 150.00ms   75.50%
    Req/Sec     3.52k   250.13     3.90k    50.00%
  Latency Distribution
     50%   16.10ms
     75%   19.20ms
     90%   24.75ms
     99%  120.50ms
  10512 requests in 3.00s, 5.83MB read
Requests/sec:   3503.51
Transfer/sec:      1.94MB
"""


def test_the_wrk_parser_reads_the_distribution_rows() -> None:
    spec = importlib.util.spec_from_file_location("api_throughput", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)

    assert bench.parse_wrk(WRK_OUTPUT) == (10512, 3503.51, 16.10, 120.50)
