"""Feature-label distortion (recraft.losses.fld): hand-computed entropies, gradients, collapse."""
from __future__ import annotations

import math

import pytest
import torch

from recraft.losses import (FLDDirection, RunningJoint, conditional_entropy, fld_loss, leep_joint,
                            source_entropy)

torch.set_num_threads(1)

# 4 target samples, Z = 3 source classes, K = 2 target classes
PROBS = torch.tensor([[1.0, 0.0, 0.0],
                      [0.5, 0.5, 0.0],
                      [0.0, 0.5, 0.5],
                      [0.0, 0.0, 1.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1, 1])
# joint P(z, k) = (1/4) sum_{i: y_i = k} p(z | x_i):
#   k=0: ([1, 0, 0] + [.5, .5, 0]) / 4 = [.375, .125, 0]
#   k=1: ([0, .5, .5] + [0, 0, 1]) / 4 = [0, .125, .375]
JOINT = [[0.375, 0.0], [0.125, 0.125], [0.0, 0.375]]
# H(Y_t | Y_s): only z=1 is ambiguous (P(z=1) = .25, split 50/50)  -> .25 ln 2
H_T_GIVEN_S = 0.25 * math.log(2)
# H(Y_s | Y_t): each class has conditional [.75, .25, 0]             -> -(.75 ln .75 + .25 ln .25)
H_S_GIVEN_T = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
# H(Z_s): marginal [.375, .25, .375]
H_Z = -(2 * 0.375 * math.log(0.375) + 0.25 * math.log(0.25))


def test_leep_joint_and_both_conditional_entropies_match_hand_values():
    joint = leep_joint(PROBS, LABELS, 2)
    assert joint.tolist() == JOINT
    assert conditional_entropy(joint, "source").item() == pytest.approx(H_T_GIVEN_S, abs=1e-8)
    assert conditional_entropy(joint, "target").item() == pytest.approx(H_S_GIVEN_T, abs=1e-8)
    assert fld_loss(PROBS, LABELS, 2, "tgt_given_src").item() == pytest.approx(0.1732868, abs=1e-7)
    assert fld_loss(PROBS, LABELS, 2, FLDDirection.SRC_GIVEN_TGT).item() == pytest.approx(0.5623351, abs=1e-7)
    assert source_entropy(PROBS).item() == pytest.approx(H_Z, abs=1e-8)
    # chain rule: H(Y|Z) + H(Z) = H(Z|Y) + H(Y), H(Y) = ln 2
    assert H_T_GIVEN_S + H_Z == pytest.approx(H_S_GIVEN_T + math.log(2))


def test_per_token_inputs_draws_and_per_token_modes():
    collapsed = torch.zeros_like(PROBS)
    collapsed[:, 0] = 1.0
    probs = torch.stack([PROBS, collapsed], dim=1)           # (n=4, T=2, Z=3)
    # "per_token": one joint per position, entropies summed over positions
    #   position 0 is the example above; position 1 is collapsed: H(Y|Z) = H(Y) = ln 2, H(Z|Y) = 0
    assert leep_joint(probs, LABELS, 2, token_mode="per_token").shape == (2, 3, 2)
    assert fld_loss(probs, LABELS, 2, "tgt_given_src", token_mode="per_token").item() == \
        pytest.approx(1.25 * math.log(2), abs=1e-8)
    assert fld_loss(probs, LABELS, 2, "src_given_tgt", token_mode="per_token").item() == \
        pytest.approx(H_S_GIVEN_T, abs=1e-8)
    # "draws": tokens are extra draws of the sample, i.e. the per-sample mean over tokens
    mean = probs.mean(dim=1)
    for direction in FLDDirection:
        assert fld_loss(probs, LABELS, 2, direction).item() == pytest.approx(
            fld_loss(mean, LABELS, 2, direction).item(), abs=1e-12)
    assert source_entropy(probs, token_mode="per_token").item() == pytest.approx(H_Z, abs=1e-8)


@pytest.mark.parametrize("direction", ["tgt_given_src", "src_given_tgt"])
@pytest.mark.parametrize("shape", [(6, 3), (6, 2, 3)])
def test_fld_is_differentiable_gradcheck(direction, shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1, 1])
    for mode in ("draws", "per_token"):
        assert torch.autograd.gradcheck(
            lambda z: fld_loss(torch.softmax(z, -1), labels, 3, direction, token_mode=mode), (logits,))


def test_empty_classes_give_no_nan():
    probs = torch.softmax(torch.randn(5, 4, dtype=torch.float64), -1).requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1, 1])
    for direction in FLDDirection:
        with_empty = fld_loss(probs, labels, 4, direction)      # classes 2 and 3 absent
        assert with_empty.item() == pytest.approx(fld_loss(probs, labels, 2, direction).item(), abs=1e-8)
        with_empty.backward()
        assert torch.isfinite(probs.grad).all()
        probs.grad = None
    one_hot = torch.eye(4, dtype=torch.float64)[[0, 0, 1, 1, 1]]  # exact zeros in the probabilities
    one_hot.requires_grad_(True)
    fld_loss(one_hot, labels, 4, "tgt_given_src").backward()
    assert torch.isfinite(one_hot.grad).all()
    with pytest.raises(ValueError):
        leep_joint(probs, torch.tensor([0, 0, 1, 1, 4]), 4)


def test_collapse_maximises_the_paper_form_and_minimises_the_reference_form():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])             # H(Y_t) = 1.5 ln 2 nats
    h_y = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    collapsed = torch.zeros(8, 3, dtype=torch.float64)
    collapsed[:, 1] = 1.0                                       # every sample -> source class 1
    informative = torch.eye(3, dtype=torch.float64)[labels]     # target class k -> source class k
    soft = torch.softmax(torch.randn(8, 3, generator=torch.Generator().manual_seed(1),
                                     dtype=torch.float64), -1)
    paper = {name: fld_loss(p, labels, 3, "tgt_given_src").item()
             for name, p in [("collapsed", collapsed), ("informative", informative), ("soft", soft)]}
    code = {name: fld_loss(p, labels, 3, "src_given_tgt").item()
            for name, p in [("collapsed", collapsed), ("informative", informative), ("soft", soft)]}
    # paper form: collapse gives H(Y_t), the maximum; an informative map gives 0
    assert paper["collapsed"] == pytest.approx(h_y, abs=1e-8)
    assert paper["informative"] == pytest.approx(0.0, abs=1e-8)
    assert paper["soft"] < paper["collapsed"]
    # reference form: collapse reaches the global minimum 0, like the informative map
    assert code["collapsed"] == pytest.approx(0.0, abs=1e-8)
    assert code["soft"] > 0.1
    assert source_entropy(collapsed).item() == pytest.approx(0.0, abs=1e-8)


def test_training_only_the_head_bias_collapses_under_the_reference_form_only():
    """The code's trainable source head: its bias alone can collapse H(Y_s|Y_t) (spec §10.6)."""
    g = torch.Generator().manual_seed(0)
    n, k = 60, 3
    labels = torch.arange(n) % k
    angle = 2 * math.pi * labels / k
    x = torch.randn(n, 2, generator=g) + 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    weight = torch.randn(2, 3, generator=g)
    h_z = {}
    for direction in FLDDirection:
        bias = torch.zeros(3, requires_grad=True)
        for _ in range(150):                    # plain gradient descent on the bias only
            loss = fld_loss(torch.softmax(x @ weight + bias, -1), labels, k, direction)
            (grad,) = torch.autograd.grad(loss, bias)
            with torch.no_grad():
                bias -= 3.0 * grad
        h_z[direction.value] = source_entropy(torch.softmax(x @ weight + bias, -1)).item()
    assert h_z["src_given_tgt"] < 0.01          # collapsed onto one source class
    assert h_z["tgt_given_src"] > 0.5           # still uses several source classes (log 3 = 1.10)


# ----------------------------------------------------------------------------- whole-set estimate
def two_labellings(n: int = 2800, k: int = 10, z: int = 9, seed: int = 0):
    """Target labels and two pseudo labellings (issue 12): confident but unrelated to the targets,
    and informative (the source class follows the target class) but less confident."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=g)]

    def soft(cls: torch.Tensor, conf: float) -> torch.Tensor:
        p = torch.full((n, z), (1 - conf) / (z - 1), dtype=torch.float64)
        p[torch.arange(n), cls] = conf
        return p

    unrelated = soft(torch.randint(0, z, (n,), generator=g), 0.99)
    informative = soft(labels.clamp(max=z - 1), 0.66)   # two target classes share a source class
    return labels, unrelated, informative


def minibatch_estimate(probs, labels, size=28, seed=1) -> float:
    """The mean FLD over one epoch of shuffled batches: the old estimator."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    vals = [float(fld_loss(probs[b], labels[b], 10)) for b in order.split(size)]
    return sum(vals) / len(vals)


def running_estimate(probs, labels, size=28, seed=1) -> list[float]:
    """Every step's value of the whole-set estimator over one epoch of shuffled batches."""
    est = RunningJoint(labels, 10)
    est.reset(probs)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return [float(est.loss(b, probs[b]).detach()) for b in order.split(size)]


def test_whole_set_estimator_orders_labellings_as_their_full_data_values():
    labels, unrelated, informative = two_labellings()
    full = {name: float(fld_loss(p, labels, 10)) for name, p in
            (("unrelated", unrelated), ("informative", informative))}
    # the full-data values: the informative labelling has the lower H(Y_t | Y_s)
    assert full["unrelated"] == pytest.approx(2.291, abs=1e-3)
    assert full["informative"] == pytest.approx(1.467, abs=1e-3)
    # the 28-sample estimate ranks them the other way round (what the old estimator optimised)
    mini = {"unrelated": minibatch_estimate(unrelated, labels),
            "informative": minibatch_estimate(informative, labels)}
    assert mini["unrelated"] == pytest.approx(1.139, abs=1e-3)
    assert mini["informative"] == pytest.approx(1.346, abs=1e-3)
    # the whole-set estimate is the full-data value at every step, so it orders them correctly
    for name, p in (("unrelated", unrelated), ("informative", informative)):
        steps = running_estimate(p, labels)
        assert steps == pytest.approx([full[name]] * len(steps), abs=1e-9)


def test_running_joint_gradient_is_the_scaled_whole_set_gradient():
    labels, _, informative = two_labellings(n=60)
    logits = torch.log(informative).clone().requires_grad_(True)
    batch = torch.arange(10, 24)
    # reference: the whole-set objective differentiated w.r.t. the batch's logits only
    full = fld_loss(torch.softmax(logits, 1), labels, 10)
    (g_full,) = torch.autograd.grad(full, logits)
    est = RunningJoint(labels, 10)
    est.reset(informative)
    value = est.loss(batch, torch.softmax(logits[batch], 1))
    (g_est,) = torch.autograd.grad(value, logits)
    assert float(value.detach()) == pytest.approx(float(full.detach()), rel=1e-9)
    assert torch.allclose(g_est[batch], g_full[batch] * 60 / len(batch), atol=1e-12)
    assert torch.count_nonzero(g_est[:10]) == 0 and torch.count_nonzero(g_est[24:]) == 0


def test_running_joint_keeps_each_samples_latest_rows():
    labels, unrelated, informative = two_labellings(n=40)
    est = RunningJoint(labels, 10)
    est.reset(unrelated)
    for b in torch.arange(40).split(8):           # one pass replaces every row
        est.loss(b, informative[b])
    assert est.value() == pytest.approx(float(fld_loss(informative, labels, 10)), rel=1e-9)
    # per-token rows (1D dense, the code's token handling) keep one joint per position
    tok = informative[:, None, :].expand(40, 3, 9)
    per_tok = RunningJoint(labels, 10, token_mode="per_token")
    per_tok.reset(tok)
    assert per_tok.value() == pytest.approx(3 * float(fld_loss(informative, labels, 10)), rel=1e-9)
    with pytest.raises(RuntimeError, match="reset"):
        RunningJoint(labels, 10).loss(torch.arange(4), informative[:4])
