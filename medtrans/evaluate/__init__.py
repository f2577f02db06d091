"""Evaluate synthetic CTs against real CTs: MAE, PSNR, SSIM (SynthRAD2023), tissue MAE, bone Dice."""

from medtrans.evaluate.metrics import METRIC_NAMES, volume_metrics
from medtrans.evaluate.stage import evaluate_folder

__all__ = ["METRIC_NAMES", "evaluate_folder", "volume_metrics"]
