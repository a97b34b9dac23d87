"""Rule family ``evaluate``: the generation benchmarks, code execution, the lm-eval harness and the locked suite."""
