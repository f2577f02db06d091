"""Inference: a checkpoint and a scan in, a synthetic scan on the input's exact grid out."""

from medtrans.infer.batch import Job, plan_jobs, run_jobs
from medtrans.infer.scan import Timing, translate_scan
from medtrans.infer.translator import Translator

__all__ = ["Job", "Timing", "Translator", "plan_jobs", "run_jobs", "translate_scan"]
