"""Specialist PDE models trained from scratch, for the paper's Table 3 comparators.

``baselines/fno.py`` takes its FNO from ``neuraloperator`` (the FNO authors' library);
``baselines/unet.py`` uses :class:`~specialists.unet.UNet`, a small 1D/2D U-Net of our own.
:class:`~specialists.fields.FieldModel` wraps either with the task's grids (the input resampled to
the target grid) and train-set standardisation.
"""
from specialists.fields import FieldModel
from specialists.unet import UNet

__all__ = ["FieldModel", "UNet"]
