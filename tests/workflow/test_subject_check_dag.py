"""The subject check in the DAG: tuning the keyword rule re-measures it without relabeling (dry runs)."""

from __future__ import annotations

import pytest
from test_stage0_gate import _dry_run_with

pytestmark = pytest.mark.workflow

SPEND = {"subject_sample", "label_subjects"}  # the sample and its labels: what a rule change must keep
# Jobs whose params hold the whole config: any config change reruns them.
WHOLE_CONFIG = {"config_snapshot", "plan", "all"}


def test_a_changed_subject_rule_reruns_normalize_and_the_check_never_the_labels(demo_run):
    jobs, out = _dry_run_with(demo_run, r"min_terms: 2", "min_terms: 3")
    assert jobs.get("normalize") == 1 and "raw/pes2o/part-0.parquet" in out, jobs
    assert jobs.get("subject_check") == 1, jobs
    assert not SPEND & set(jobs), jobs
    # (The demo's tokenizer is trained on every source, peS2o's part included, so what follows the
    # tokenizer reruns too; the study's is pretrained.)


def test_a_changed_subject_sample_relabels_only_the_sample(demo_run):
    jobs, _ = _dry_run_with(demo_run, r"max_files: null", "max_files: 1")
    assert set(jobs) - WHOLE_CONFIG == {"subject_sample", "label_subjects", "subject_check"}, jobs
    assert jobs["label_subjects"] == 1, jobs
