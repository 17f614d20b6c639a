"""FNO: the Fourier neural operator (Li et al. 2021), a Table 3 specialist trained from scratch.

The paper compares RECRAFT with PDEBench's FNO and U-Net numbers; this runs an FNO on the same
data, budget and selection as every other method. The model is ``neuraloperator``'s (the FNO
authors' library) at PDEBench's size: 12 Fourier modes per axis, width 20, 4 Fourier layers.
It takes no pretrained body (``uses_body = False``): its rows record no backbone, and
``ctx.fit`` trains it with Adam and no gradient clipping (``SCRATCH_DEFAULTS``), lr and weight
decay from ``specialist_space`` (the FNO papers' 1e-3 and 1e-4 first).
"""
from __future__ import annotations

import importlib.util

from specialists import FieldModel
from specialists.method import FieldSpecialist

if importlib.util.find_spec("neuralop") is None:   # listed as unavailable, not failing in a trial
    raise ImportError("the fno baseline needs neuraloperator: pip install 'neuraloperator==2.0.0' "
                      "(or reinstall the project: pip install -e .)")


class FNOBaseline(FieldSpecialist):
    name = "fno"
    version = "1"
    summary = "Fourier neural operator trained from scratch on the task (Table 3 specialist)"
    paper = "Li et al., Fourier Neural Operator for Parametric PDEs, ICLR 2021"
    modes, width, layers = 12, 20, 4     # PDEBench's FNO (1D and 2D)

    def stage_finetune(self, ctx, config, upstream):
        # imported here: discovery and the other methods' trial actors skip its ~1.5 s import
        from neuralop.models import FNO

        x, y = ctx.data.split("train")
        net = FNO(n_modes=(self.modes,) * (x.ndim - 2), in_channels=x.shape[1],
                  out_channels=y.shape[1], hidden_channels=self.width, n_layers=self.layers)
        model = FieldModel(net, x, y, standardize=ctx.profile.standardize)
        return ctx.fit(model, config).stage_output()
