"""End-to-end studies: one config, one command (`medtrans run`), stages skipped when up to date."""

from medtrans.pipeline.compare import run_comparison
from medtrans.pipeline.stages import STAGES, Study

__all__ = ["STAGES", "Study", "run_comparison"]
