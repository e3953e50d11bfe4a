"""kubevc benchmarks: reproduce the paper's Table 5 / transfer-time numbers and measure our paths.

``python -m bench --quick`` (``make bench``) and ``python -m bench --full`` (``make bench-full``)
write one JSON file per suite to ``bench/results/`` and regenerate ``docs/benchmarks.md`` plus
the PNG plots in ``docs/img/``.
"""
