"""Neural networks in PyTorch: backbones, the dlib face ResNet port and training tools.

Importing this package imports torch and registers every built-in model; the top-level
``facecore`` package never imports it eagerly.
"""

from facecore.nn.registry import create_model, is_model, list_models, register_model

__all__ = ["create_model", "is_model", "list_models", "register_model"]
