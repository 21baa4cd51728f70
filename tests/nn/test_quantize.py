"""facecore.nn.quantize: int8 tops that agree with their float versions."""

import numpy as np
import pytest
import torch

from facecore.nn.dlib_resnet import DlibFaceResNet, for_inference
from facecore.nn.quantize import activation_qparams, is_quantized, quantize_top
from facecore.nn.top import BackboneTop


@pytest.fixture(scope="module")
def net():
    from facecore.model_router import resolve

    return DlibFaceResNet.from_dlib_file(resolve("dlib_face_recognition_resnet")).eval()


@pytest.fixture(scope="module")
def maps(net):
    """Stage-2 and stage-3 maps of 48 smooth random 'chips' (real weights, real ranges)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (48, 10, 10, 3)).astype(np.float32)
    chips = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2), size=150, mode="bilinear"
    )
    chips = chips.permute(0, 2, 3, 1).numpy().astype(np.uint8)
    with torch.inference_mode():
        nodes = net.forward_feature_dict(net.preprocess(chips))
    return {k: nodes[k].numpy() for k in ("stage2", "stage3")}


@pytest.mark.parametrize("start", ["stage3", "stage4"])
def test_int8_top_agrees_with_the_float_top(net, maps, start):
    top = for_inference(BackboneTop(net, start=start, num_outputs=8))
    x = maps[top.input_node]
    q = quantize_top(top, x[:32])
    assert is_quantized(q) and not is_quantized(top)
    test = torch.from_numpy(x[32:])
    ref = top.predict(test.contiguous(memory_format=torch.channels_last)).numpy()
    out = q.predict(test).numpy()
    assert out.shape == ref.shape == (16, 8)
    # int8 keeps the outputs within a few percent of their spread, and their order
    assert np.abs(out - ref).mean() < 0.05 * ref.std()
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.99


def test_saved_ranges_rebuild_the_same_int8_top(net, maps):
    top = for_inference(BackboneTop(net, start="stage4", num_outputs=4))
    q = quantize_top(top, maps["stage3"][:32])
    qp = activation_qparams(q)
    assert len(qp) == 3 * 4  # per block: input, conv1, conv2
    again = quantize_top(top, qparams=qp)
    x = torch.from_numpy(maps["stage3"][32:])
    np.testing.assert_array_equal(q.predict(x).numpy(), again.predict(x).numpy())
    with pytest.raises(ValueError, match="another top"):
        quantize_top(for_inference(BackboneTop(net, start="stage3", num_outputs=4)), qparams=qp)


def test_arguments_are_checked(net, maps):
    top = BackboneTop(net, start="stage5", num_outputs=2)
    with pytest.raises(ValueError, match="exactly one"):
        quantize_top(top)
    with pytest.raises(ValueError, match="exactly one"):
        quantize_top(top, maps["stage3"], qparams={})
    with pytest.raises(ValueError, match="not a quantized top"):
        activation_qparams(top)
    with pytest.raises(ValueError, match="empty"):
        quantize_top(top, np.zeros((0, 256, 4, 4), np.float32))
