# Snakemake's own process: when its scheduler wakes up.
#
# After each pass over the ready jobs, Snakemake 9's scheduler starts a timer that wakes it for
# another pass after the job rate limiter's timespan (--max-jobs-per-timespan, 1 s by default), and
# every finished job wakes it once more, which starts one more such chain of timers
# (snakemake/snakemake#3744). While jobs wait for a core, the passes per second grow with the jobs
# finished so far: one demo run made 19,402 passes, 24 of Snakemake's 46 CPU-seconds on a machine
# whose two cores the jobs need, and on a cluster every pass stats each waiting job's inputs on the
# shared filesystem. The timer is there so that a submission held back by the rate limiter is
# retried within the timespan; one pending wake-up does that, so a second is not started while one
# is due as soon.

import time

from snakemake.scheduling.job_scheduler import JobScheduler


def one_pending_wakeup(start_timer):
    """``start_timer`` (the scheduler's wake-up), skipped while an earlier one is due as soon."""

    def schedule_reevaluation(scheduler, delay):
        now = time.monotonic()
        if now < getattr(scheduler, "trellis_wakeup_due", 0.0) <= now + delay:
            return
        scheduler.trellis_wakeup_due = now + delay
        start_timer(scheduler, delay)

    schedule_reevaluation.trellis_wraps = start_timer
    return schedule_reevaluation


# Only where this Snakemake has the method (its name is misspelt upstream), and once per process:
# a workflow loaded twice in one process must not wrap the wrapper.
_wakeup = getattr(JobScheduler, "_schedule_reevalutation", None)
if _wakeup is not None and not hasattr(_wakeup, "trellis_wraps"):
    JobScheduler._schedule_reevalutation = one_pending_wakeup(_wakeup)
