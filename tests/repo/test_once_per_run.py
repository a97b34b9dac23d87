"""The guard that the demo run and the SLURM cluster are built by one process of a test run."""

import pytest


def test_a_second_claim_of_the_same_name_fails(claim_once_per_run):
    claim_once_per_run("guard-self-test")
    claim_once_per_run("another-name")  # other names are unaffected
    with pytest.raises(pytest.fail.Exception, match="built by two processes"):
        claim_once_per_run("guard-self-test")
