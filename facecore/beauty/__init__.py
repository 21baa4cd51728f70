"""Face beautification: shape (MLS warping towards better-rated similar faces), skin smoothing and
average faces.

Following B. Zhang, X. Xiao, G. Lu, "Facial beauty analysis based on features prediction and
beautification models", Pattern Analysis and Applications 21(2), 2018 (its beautification
half), with the data-driven shape target of T. Leyvand et al., "Data-driven enhancement of facial
attractiveness", SIGGRAPH 2008, and the warp of S. Schaefer, T. McPhail, J. Warren, "Image
deformation using moving least squares", SIGGRAPH 2006.

* :mod:`~facecore.beauty.mls` - :func:`mls_warp`: affine, similarity and rigid MLS on a grid.
* :mod:`~facecore.beauty.shape` - the SCUT-FBP5500 reference set and :func:`shape_target`.
* :mod:`~facecore.beauty.skin` - :func:`skin_mask` and multi-level median :func:`smooth_skin`.
* :mod:`~facecore.beauty.average` - :func:`average_faces` (Delaunay, piecewise affine).
* :mod:`~facecore.beauty.pipeline` - the verb :func:`beautify` and :class:`BeautifyResult`.
* :mod:`~facecore.beauty.cli` - ``facecore beautify`` and ``facecore average``.

The reference set is built from SCUT-FBP5500 and is for non-commercial research use only. Names
are imported lazily (nothing heavy at ``import facecore.beauty``).
"""

from typing import TYPE_CHECKING

from facecore.lazy import lazy_exports

if TYPE_CHECKING:
    from facecore.beauty.average import average_faces, piecewise_affine_warp
    from facecore.beauty.mls import (
        MLS_KINDS,
        mls_backward_map,
        mls_deform,
        mls_warp,
        mls_warp_region,
    )
    from facecore.beauty.pipeline import (
        DEFAULT_SMOOTH,
        DEFAULT_WARP,
        BeautifyResult,
        NoFaceError,
        beautify,
        face_region,
        grid_step,
        warp_face,
    )
    from facecore.beauty.shape import (
        REFERENCE_MODEL,
        BeautyReference,
        ShapeTarget,
        load_reference,
        procrustes_mean,
        shape_target,
    )
    from facecore.beauty.skin import multilevel_median, skin_mask, smooth_skin

__all__ = [
    "DEFAULT_SMOOTH",
    "DEFAULT_WARP",
    "MLS_KINDS",
    "REFERENCE_MODEL",
    "BeautifyResult",
    "BeautyReference",
    "NoFaceError",
    "ShapeTarget",
    "average_faces",
    "beautify",
    "face_region",
    "grid_step",
    "load_reference",
    "mls_backward_map",
    "mls_deform",
    "mls_warp",
    "mls_warp_region",
    "multilevel_median",
    "piecewise_affine_warp",
    "procrustes_mean",
    "shape_target",
    "skin_mask",
    "smooth_skin",
    "warp_face",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "average_faces": ".average",
        "piecewise_affine_warp": ".average",
        "DEFAULT_SMOOTH": ".pipeline",
        "DEFAULT_WARP": ".pipeline",
        "BeautifyResult": ".pipeline",
        "NoFaceError": ".pipeline",
        "beautify": ".pipeline",
        "face_region": ".pipeline",
        "grid_step": ".pipeline",
        "warp_face": ".pipeline",
        "MLS_KINDS": ".mls",
        "mls_backward_map": ".mls",
        "mls_deform": ".mls",
        "mls_warp": ".mls",
        "mls_warp_region": ".mls",
        "REFERENCE_MODEL": ".shape",
        "BeautyReference": ".shape",
        "ShapeTarget": ".shape",
        "load_reference": ".shape",
        "procrustes_mean": ".shape",
        "shape_target": ".shape",
        "multilevel_median": ".skin",
        "skin_mask": ".skin",
        "smooth_skin": ".skin",
    },
)
