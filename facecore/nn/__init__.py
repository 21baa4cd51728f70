"""Neural networks in PyTorch: backbones, the dlib face ResNet port and training tools.

Importing this package imports neither torch nor any network: the registry
(:mod:`~facecore.nn.registry`) imports a model's module on the model's first use, so the face
pipeline loads only the trunk it runs (:mod:`~facecore.nn.dlib_resnet`). The top-level
``facecore`` package never imports this package eagerly.

Modules: :mod:`~facecore.nn.dlib_resnet` (dlib's face ResNet), :mod:`~facecore.nn.top` (a head's
fine-tuned copy of its last stages), :mod:`~facecore.nn.quantize` (int8 tops),
:mod:`~facecore.nn.features`; and the research networks and tools the tests exercise:
:mod:`~facecore.nn.resnet` (ResNet / SE / EraseReLU / DRN backbones),
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
    "create_model",
    "default_weights",
    "is_model",
    "list_models",
    "pretrained_spec",
    "register_model",
    "resolve_weights",
]
