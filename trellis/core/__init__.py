"""What every stage shares.

Atomic file I/O, logging, the task definitions, step statistics, bootstrap intervals.
"""
