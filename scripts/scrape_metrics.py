#!/usr/bin/env python3
"""Scrapes a Prometheus endpoint and parses it with prometheus_client's exposition-format
parser (the reference parser, not encore's code).

usage: scrape_metrics.py URL

Prints one JSON list of samples: {"name", "labels", "value"}. Exit 3 when the endpoint does not
answer (not up yet), 1 when the text does not parse.
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
            text = r.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        print(f"not answering: {e}", file=sys.stderr)
        return 3
    samples = [
        {"name": s.name, "labels": s.labels, "value": s.value}
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    json.dump(samples, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
