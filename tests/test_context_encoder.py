"""The source report's architecture: shapes, layers, timm registration, and the pairing with inpainting."""

import pytest
import timm
import torch
from torch import nn

from ssrbench.models.backbone import BACKBONES, create_backbone
from ssrbench.models.context_encoder import (
    CentreTapsUpsample,
    ContextEncoderDecoder,
    ContextEncoderNet,
    PatchGANDiscriminator,
)
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.inpaint import InpaintTask
from ssrbench.run.testing import check_task_contract

NAME = "ssr_context_encoder"


def _model(task: InpaintTask | None = None) -> SSRModel:
    model = SSRModel(NAME, (0.5,) * 3, (0.25,) * 3, 10)
    return (task or InpaintTask()).attach(model)


def test_registered_in_timm_and_named_by_the_backbone_registry():
    assert NAME in BACKBONES.names()
    backbone, adaptation = create_backbone(NAME)
    assert timm.is_model(NAME) and NAME in timm.list_models("ssr_*")
    assert isinstance(backbone, ContextEncoderNet) and adaptation == "native"
    with_head = timm.create_model(NAME, num_classes=10)
    assert with_head(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model(NAME, pretrained=True)


def test_encoder_is_the_reports_downsampling_path():
    backbone, _ = create_backbone(NAME)
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 64), (64, 128), (128, 256), (256, 512)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    norms = [any(isinstance(m, nn.BatchNorm2d) for m in stage) for stage in backbone.stages]
    assert norms == [False, True, True, True, True]
    assert all(m.negative_slope == 0.2 for m in backbone.modules() if isinstance(m, nn.LeakyReLU))


def test_shapes_32_in_512_features_to_a_single_linear_classifier():
    model = _model().eval()
    x = torch.rand(3, 3, 32, 32)
    assert model.features(x).shape == (3, 512, 1, 1)
    assert isinstance(model.classifier, nn.Linear)
    assert (model.classifier.in_features, model.classifier.out_features) == (512, 10)
    assert model(x).shape == (3, 10)


def test_inpainting_uses_the_upsampling_path_and_the_patch_discriminator():
    model = _model().eval()
    assert isinstance(model.heads["generator"], ContextEncoderDecoder)
    assert isinstance(model.heads["discriminator"], PatchGANDiscriminator)
    x = torch.rand(3, 3, 32, 32)
    masked, _ = InpaintTask().cut(x)
    patch = model.heads["generator"](model.task_features(masked))
    assert patch.shape == (3, 3, 16, 16)
    assert patch.min() >= 0 and patch.max() <= 1  # tanh mapped to pixels
    assert model.heads["discriminator"](patch).shape == (3, 4)  # 2x2 patch logits, as in PyTorch-GAN
    assert model.heads["generator"].bottleneck.out_channels == 4000


def test_other_backbones_keep_the_generic_decoder():
    model = SSRModel("test_efficientnet", (0.5,) * 3, (0.25,) * 3, 10)
    InpaintTask({"decoder_width": 8, "discriminator_width": 8}).attach(model)
    assert not isinstance(model.heads["generator"], ContextEncoderDecoder)


def test_wrong_geometry_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="mask_fraction 0.5"):
        _model(InpaintTask({"mask_fraction": 0.25}))


def test_centre_taps_equal_the_full_transposed_convolution():
    torch.manual_seed(0)
    full = nn.ConvTranspose2d(40, 8, 4, 2, 1)
    compact = CentreTapsUpsample.from_conv_transpose(full)
    x = torch.randn(5, 40, 1, 1, requires_grad=True)
    y_full, y_compact = full(x), compact(x)
    assert y_compact.shape == y_full.shape == (5, 8, 2, 2)
    torch.testing.assert_close(y_compact, y_full)
    g = torch.randn_like(y_full)
    (gx_full,) = torch.autograd.grad(full(x), x, g)
    (gx_compact,) = torch.autograd.grad(compact(x), x, g)
    torch.testing.assert_close(gx_compact, gx_full)
    full(x.detach()).backward(g)
    compact(x.detach()).backward(g)
    torch.testing.assert_close(compact.weight.grad.view(40, 8, 2, 2), full.weight.grad[:, :, 1:3, 1:3])
    assert full.weight.grad[:, :, 0].abs().sum() == 0  # the taps left out never receive a gradient
    with pytest.raises(ValueError, match="1x1"):
        compact(torch.randn(1, 40, 2, 2))


def test_inpaint_contract_holds_with_the_paired_heads():
    check_task_contract(InpaintTask, backbone=NAME)
