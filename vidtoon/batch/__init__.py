"""Folders of clips, resumably, on local worker processes or a Ray cluster:
run (run_batch: the steps), plan (finding clips, what is left to do),
workers (what a worker does with a clip), local and cluster (the two kinds of
pool), manifest (what is done, and with which recipe), report (report.json
and report.html), table (the live table the CLI shows).

    from vidtoon.batch import BatchOptions, run_batch
"""

from .run import BatchInterrupted, BatchOptions, BatchResult, run_batch

__all__ = ["BatchInterrupted", "BatchOptions", "BatchResult", "run_batch"]
