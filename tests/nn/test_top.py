import copy

import numpy as np
import pytest
import torch

from facecore.nn.dlib_resnet import ChannelAffine, DlibFaceResNet, fold_affines, for_inference
from facecore.nn.top import BackboneTop


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = DlibFaceResNet().eval()
    with torch.no_grad():  # non-trivial affines, so that folding has something to do
        for m in model.modules():
            if isinstance(m, ChannelAffine):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def test_top_from_the_shared_map_equals_the_whole_network(net):
    x = torch.randn(2, 3, 150, 150)
    top = BackboneTop(net, start="stage4", num_outputs=5)
    assert top.input_node == "stage3"
    with torch.no_grad():
        top.fc.weight.copy_(torch.eye(5, 256))  # the first five pooled channels
        top.fc.bias.zero_()
        nodes = net.forward_feature_dict(x)
        out = top.predict(nodes["stage3"])
    np.testing.assert_allclose(out.numpy(), nodes["pooled"][:, :5].numpy(), atol=1e-5)
    # the copy is the head's own: training it leaves the shared backbone alone
    before = [p.clone() for p in net.stages[3].parameters()]
    next(iter(top.stages[0].parameters())).data.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, net.stages[3].parameters(), strict=True))


def test_top_arguments_are_checked(net):
    with pytest.raises(ValueError, match="start must be one of"):
        BackboneTop(net, start="stage9", num_outputs=3)
    with pytest.raises(ValueError, match="num_outputs"):
        BackboneTop(net, start="stage4", num_outputs=0)
    assert BackboneTop(net, start="stage1", num_outputs=3).input_node == "stem"


def test_folding_keeps_the_outputs_and_removes_the_affines(net):
    x = torch.randn(2, 3, 150, 150)
    fast = for_inference(copy.deepcopy(net))
    assert not any(isinstance(m, ChannelAffine) for m in fast.modules())
    assert not any(p.requires_grad for p in fast.parameters())
    with torch.inference_mode():
        ref = net.forward_feature_dict(x)
        got = fast.forward_feature_dict(x.contiguous(memory_format=torch.channels_last))
    for k in ref:
        np.testing.assert_allclose(got[k].numpy(), ref[k].numpy(), rtol=1e-4, atol=1e-5)
    assert fold_affines(fast) is fast  # idempotent
