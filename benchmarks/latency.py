"""Latency and throughput benchmark: a thin script over ``audio2face.bench``.

    python benchmarks/latency.py --help
"""

from __future__ import annotations

import sys

from audio2face.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
