"""Assignment 06: parameters and multiply-adds of a bottom-heavy ResNet, per stage
(chapter 08, tinylib.analysis.flops)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("06_bh_flops", "bh_flops", [
    md("""
    # Assignment 06 — Parameters and FLOPs of a bottom-heavy ResNet

    Ning et al. make backbones *bottom-heavy* (BH) for tiny objects: more blocks at high
    resolution, fewer at low resolution, at about the same cost. BH-ResNet50 (their Table 4)
    has a `3x3, 64, stride 1` stem and a 3x3 max-pool (stride 2, padding 1), then four stages
    of torchvision bottlenecks of widths 64 / 128 / 256 / 512 with **7, 6, 2, 1** blocks, each
    stage starting with a stride-2 block — 10.95M parameters and 27.12 GFLOPs at 640 x 512.

    Chapter 08 counts them with `tinylib.analysis.flops.complexity_by_stage` (PyTorch's
    `FlopCounterMode` on the `meta` device). Here you count them with a pencil — well, with
    Python. Conventions: convolutions have no bias; "MACs" are the multiply-accumulates of the
    convolutions only (what detection papers call FLOPs); a BatchNorm layer has `2 x channels`
    parameters (its affine weight and bias). Points: 2 + 3 + 3 = 8.
    """, "intro"),
    readonly("setup", """
    import numpy as np
    """),
    md("""
    ## Task 1 — one convolution (2 points)

    `conv_cost(c_in, c_out, k, in_hw, stride=1, padding=None)` for a `k x k` convolution
    (`padding` defaults to `k // 2`) on an input of `in_hw = (H, W)` returns
    `(params, macs, out_hw)` — each output size is `(size + 2 * padding - k) // stride + 1`.
    """, "task1"),
    answer("conv_cost", """
    def conv_cost(c_in, c_out, k, in_hw, stride=1, padding=None):
        \"\"\"``(params, macs, (H_out, W_out))`` of a bias-free ``k x k`` convolution.\"\"\"
        ### BEGIN SOLUTION
        padding = k // 2 if padding is None else padding
        out_hw = tuple((size + 2 * padding - k) // stride + 1 for size in in_hw)
        params = c_in * c_out * k * k
        return params, params * out_hw[0] * out_hw[1], out_hw
        ### END SOLUTION
    """),
    tests("test_conv_cost", 2, """
    params, macs, out_hw = conv_cost(3, 64, 3, (512, 640))      # BH-ResNet50's stem conv
    assert (params, out_hw) == (1728, (512, 640))
    assert macs == 1728 * 512 * 640
    assert conv_cost(64, 64, 1, (9, 9), stride=2)[2] == (5, 5)
    ### BEGIN HIDDEN TESTS
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
    rng = np.random.default_rng(17)
    for trial in range(12):
        c_in, c_out = (int(v) for v in rng.integers(1, 65, 2))
        k, stride = int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 4))
        padding = None if trial % 2 else int(rng.integers(0, k // 2 + 1))
        h, w = (int(v) for v in rng.integers(k, 90, 2))
        p = k // 2 if padding is None else padding
        conv = nn.Conv2d(c_in, c_out, k, stride, p, bias=False, device="meta")
        with FlopCounterMode(display=False) as fc:
            out = conv(torch.zeros(1, c_in, h, w, device="meta"))
        want = (sum(t.numel() for t in conv.parameters()), fc.get_total_flops() // 2,
                tuple(out.shape[-2:]))
        assert tuple(conv_cost(c_in, c_out, k, (h, w), stride, padding)) == want, trial
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — one bottleneck block (3 points)

    `bottleneck_cost(inplanes, planes, in_hw, stride=1)` for torchvision's `Bottleneck`:
    `1x1` conv `inplanes -> planes`, `3x3` conv `planes -> planes` with the stride (padding 1),
    `1x1` conv `planes -> 4 planes`, each followed by a BatchNorm; plus a projection shortcut
    (`1x1` conv with the stride, `inplanes -> 4 planes`, and a BatchNorm) when `stride != 1`
    or `inplanes != 4 * planes`. Returns `(params, macs, out_hw)`, the parameters including
    BatchNorm, the MACs of the convolutions.
    """, "task2"),
    answer("bottleneck_cost", """
    def bottleneck_cost(inplanes, planes, in_hw, stride=1):
        \"\"\"``(params incl. BN, conv MACs, out_hw)`` of a torchvision bottleneck block.\"\"\"
        ### BEGIN SOLUTION
        out = 4 * planes
        p1, m1, hw1 = conv_cost(inplanes, planes, 1, in_hw)
        p2, m2, hw2 = conv_cost(planes, planes, 3, hw1, stride, 1)
        p3, m3, hw3 = conv_cost(planes, out, 1, hw2)
        params, macs = p1 + p2 + p3 + 2 * (planes + planes + out), m1 + m2 + m3
        if stride != 1 or inplanes != out:
            p_down, m_down, _ = conv_cost(inplanes, out, 1, in_hw, stride, 0)
            params, macs = params + p_down + 2 * out, macs + m_down
        return params, macs, hw3
        ### END SOLUTION
    """),
    tests("test_bottleneck_cost", 3, """
    params, macs, out_hw = bottleneck_cost(256, 64, (56, 56))       # ResNet-50's res2 block
    assert params == 70400 and out_hw == (56, 56)
    assert macs == (256 * 64 + 9 * 64 * 64 + 64 * 256) * 56 * 56
    assert bottleneck_cost(64, 64, (56, 56), stride=2)[2] == (28, 28)
    ### BEGIN HIDDEN TESTS
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.models.resnet import Bottleneck
    rng = np.random.default_rng(18)
    for trial in range(10):
        planes = int(rng.choice([8, 16, 64, 128]))
        inplanes = 4 * planes if trial % 3 == 0 else int(rng.integers(8, 300))
        stride = int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(3, 70, 2))
        with torch.device("meta"):
            down = None
            if stride != 1 or inplanes != 4 * planes:
                down = nn.Sequential(nn.Conv2d(inplanes, 4 * planes, 1, stride, bias=False),
                                     nn.BatchNorm2d(4 * planes))
            block = Bottleneck(inplanes, planes, stride, down).eval()
            with FlopCounterMode(display=False) as fc:
                out = block(torch.zeros(1, inplanes, h, w))
        want = (sum(t.numel() for t in block.parameters()), fc.get_total_flops() // 2,
                tuple(out.shape[-2:]))
        assert tuple(bottleneck_cost(inplanes, planes, (h, w), stride)) == want, trial
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — BH-ResNet50, stage by stage (3 points)

    `bh_resnet_costs(depths=(7, 6, 2, 1), input_hw=(512, 640))` returns a dict
    `{"stem": (params, macs), "stage1": ..., "stage2": ..., "stage3": ..., "stage4": ...}`
    for the design described at the top with `depths[i]` blocks in stage `i + 1` (the stem:
    its convolution, BatchNorm and max-pool; stage `i + 1` has width `64 * 2**i`, its first
    block stride 2 and input channels 64 for stage 1, `4 x` the previous width after).
    The totals at 640 x 512 are 10,948,160 parameters and 26.74 GMACs of convolutions — the
    27.12 "GFLOPs" of Table 4 once BatchNorm, ReLU and pooling are counted as mmcv does.
    """, "task3"),
    answer("bh_resnet_costs", """
    def bh_resnet_costs(depths=(7, 6, 2, 1), input_hw=(512, 640)):
        \"\"\"Per stage ``(params, macs)`` of a BH-ResNet with ``depths`` bottlenecks.\"\"\"
        ### BEGIN SOLUTION
        params, macs, hw = conv_cost(3, 64, 3, input_hw)
        costs = {"stem": (params + 2 * 64, macs)}
        hw = tuple((size + 2 - 3) // 2 + 1 for size in hw)      # 3x3 max-pool, stride 2
        inplanes = 64
        for i, n in enumerate(depths):
            planes, total_p, total_m = 64 * 2 ** i, 0, 0
            for b in range(n):
                p, m, hw = bottleneck_cost(inplanes, planes, hw, 2 if b == 0 else 1)
                total_p, total_m, inplanes = total_p + p, total_m + m, 4 * planes
            costs[f"stage{i + 1}"] = (total_p, total_m)
        return costs
        ### END SOLUTION
    """),
    tests("test_bh_resnet_costs", 3, """
    costs = bh_resnet_costs()
    assert list(costs) == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert costs["stem"] == (1856, 1728 * 512 * 640)
    assert sum(p for p, _ in costs.values()) == 10_948_160
    assert abs(sum(m for _, m in costs.values()) / 1e9 - 26.74) < 0.005
    ### BEGIN HIDDEN TESTS
    import torch
    from tinylib.analysis import flops
    from tinylib.models.backbones import bh_resnet50
    for depths, hw in [((7, 6, 2, 1), (512, 640)), ((3, 4, 6, 3), (224, 224)),
                       ((1, 1, 1, 1), (97, 131)), ((2, 3, 1, 2), (64, 80))]:
        with torch.device("meta"):
            model = bh_resnet50(depths=depths)
        ref = flops.complexity_by_stage(model, hw).set_index("stage")
        got = bh_resnet_costs(depths, hw)
        for stage, (p, m) in got.items():
            assert p == ref.loc[stage, "params"], (depths, stage)
            assert np.isclose(m, ref.loc[stage, "conv_gmacs"] * 1e9, rtol=1e-12), (depths, stage)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * What share of the MACs do the stem and stages 1-2 take in BH-ResNet50, and in
      ResNet-50 (`resnet_features(50)`)? That is Fig. 2 of the BH paper.
    * Chapter 08 (`notebooks/08_bottom_heavy.ipynb`) explains the gaps to the published table.
    """, "further"),
])
