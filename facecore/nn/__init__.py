"""Neural networks in PyTorch: backbones, the dlib face ResNet port and training tools.

Importing this package imports torch and registers every built-in model; the top-level
``facecore`` package never imports it eagerly.

Modules: :mod:`~facecore.nn.resnet` (ResNet / SE / EraseReLU / DRN backbones),
:mod:`~facecore.nn.ensembles` (coupled ensembles), :mod:`~facecore.nn.binary` (binarized
networks), :mod:`~facecore.nn.orn` (oriented response convolutions),
:mod:`~facecore.nn.regularizers`, :mod:`~facecore.nn.losses`, :mod:`~facecore.nn.optim` and
:mod:`~facecore.nn.vggface` (VGG-Face with a loader for the original published weights),
:mod:`~facecore.nn.faceres` (HSE-FaceRes, a MobileNet v1 ported from a TF.js graph read by
:mod:`~facecore.nn.tfjs`). :mod:`~facecore.nn.blazeface` (the BlazeFace detector network, also
ported from TF.js) is not a registered backbone: :mod:`facecore.detect.blazeface` loads it.

Pretrained weights are entries of the model manifest (:mod:`facecore.model_store`), named by
``create_model(name, pretrained=True | "<entry>" | spec)`` and sha256-checked when resolved. This
package knows nothing of the face pipeline (detection, landmarks, alignment): which crop a set of
weights expects is the manifest entry's ``chip``.
"""

# Importing the model modules registers their factories (including ``dlib_face_resnet``).
from facecore.nn import (
    binary,
    dlib_resnet,
    ensembles,
    faceres,
    losses,
    optim,
    orn,
    regularizers,
    resnet,
    vggface,
)
from facecore.nn.registry import (
    create_model,
    default_weights,
    is_model,
    list_models,
    pretrained_spec,
    register_model,
    resolve_weights,
)

__all__ = [
    "binary",
    "create_model",
    "default_weights",
    "dlib_resnet",
    "ensembles",
    "faceres",
    "is_model",
    "list_models",
    "losses",
    "optim",
    "orn",
    "pretrained_spec",
    "register_model",
    "regularizers",
    "resnet",
    "resolve_weights",
    "vggface",
]
