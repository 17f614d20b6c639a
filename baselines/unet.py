"""U-Net (Ronneberger et al. 2015, as in PDEBench): a Table 3 specialist trained from scratch.

The paper compares RECRAFT with PDEBench's FNO and U-Net numbers; this runs a U-Net on the same
data, budget and selection as every other method. The model is :class:`specialists.unet.UNet`,
1D or 2D after the task, smaller than PDEBench's (16 base channels and 3 levels against 32 and 4)
so that it trains on a CPU. It takes no pretrained body (``uses_body = False``): its rows record
no backbone, and ``ctx.fit`` trains it with Adam and no gradient clipping (``SCRATCH_DEFAULTS``),
lr and weight decay from ``specialist_space`` (PDEBench's 1e-3 and 1e-4 first).
"""
from __future__ import annotations

from specialists import FieldModel, UNet
from specialists.method import FieldSpecialist


class UNetBaseline(FieldSpecialist):
    name = "unet"
    version = "2"
    summary = "U-Net trained from scratch on the task (Table 3 specialist)"
    paper = "Ronneberger et al., U-Net, MICCAI 2015; trained as in PDEBench (Takamoto et al. 2022)"
    features, levels = 16, 3

    def stage_finetune(self, ctx, config, upstream):
        x, y = ctx.data.split("train")
        dim = x.ndim - 2           # + dim coordinate channels: see FieldModel(coords=True)
        net = UNet(x.shape[1] + dim, y.shape[1], dim=dim, features=self.features,
                   levels=self.levels)
        model = FieldModel(net, x, y, standardize=ctx.profile.standardize, coords=True)
        return ctx.fit(model, config).stage_output()
