"""Rule family ``evaluate``.

The generation benchmarks, code execution, the lm-eval harness and the locked suite.
"""
