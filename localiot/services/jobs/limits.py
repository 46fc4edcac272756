"""AWS IoT Jobs quotas, below every jobs module that checks one."""

from __future__ import annotations


class Limits:
    """AWS IoT Jobs quotas (adjustable on AWS; module attributes here)."""

    TARGETS_PER_JOB = 100  # things and thing groups named in `targets`
    CONCURRENT_JOBS = 4  # jobs rolling out or canceling at the same time
    DELETING_JOBS = 10  # jobs in DELETION_IN_PROGRESS at the same time
    STATUS_DETAILS = 10  # entries in an execution's statusDetails
    STATUS_DETAIL_VALUE = 1024
    TIMEOUT_MINUTES = (1, 10080)
    PENDING_LIST = 10  # GetPendingJobExecutions answer size
    NOTIFY_LIST = 15  # jobs/notify list size
    DOCUMENT_SIZE = 32768
    # Work done inside one API call or one timer tick for a single job, so
    # a job on 100,000 things never holds the loop for long.
    RELEASE_PER_CALL = 1000
    RELEASE_PER_TICK = 10000
    DELETE_PER_CALL = 1000
    DELETE_PER_TICK = 10000
