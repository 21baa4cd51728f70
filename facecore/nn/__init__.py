"""Neural networks in PyTorch: backbones, the dlib face ResNet port and training tools.

Importing this package imports torch and registers every built-in model; the top-level
``facecore`` package never imports it eagerly.

Modules: :mod:`~facecore.nn.resnet` (ResNet / SE / EraseReLU / DRN backbones),
:mod:`~facecore.nn.ensembles` (coupled ensembles), :mod:`~facecore.nn.binary` (binarized
networks), :mod:`~facecore.nn.orn` (oriented response convolutions),
:mod:`~facecore.nn.regularizers`, :mod:`~facecore.nn.losses`, :mod:`~facecore.nn.optim` and
:mod:`~facecore.nn.vggface` (VGG-Face with a loader for the original published weights).
"""

# Importing the model modules registers their factories (including ``dlib_face_resnet``).
from facecore.nn import (
    binary,
    dlib_resnet,
    ensembles,
    losses,
    optim,
    orn,
    regularizers,
    resnet,
    vggface,
)
from facecore.nn.registry import create_model, is_model, list_models, register_model

__all__ = [
    "binary",
    "create_model",
    "dlib_resnet",
    "ensembles",
    "is_model",
    "list_models",
    "losses",
    "optim",
    "orn",
    "register_model",
    "regularizers",
    "resnet",
    "vggface",
]
