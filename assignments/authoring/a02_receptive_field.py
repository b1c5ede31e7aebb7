"""Assignment 02: receptive-field arithmetic (chapter 04, tinylib.analysis.receptive_field)."""

from cells import Spec, answer, md, readonly, tests

SPEC = Spec("02_receptive_field", "receptive_field", [
    md("""
    # Assignment 02 — Receptive-field arithmetic

    *Finding Tiny Faces* explains its templates with receptive fields: a unit of ResNet's
    `res3` sees **99 x 99** input pixels, one of `res5` **483 x 483** — a 25 x 20 px face is
    mostly *context* for them. Chapter 04 gets these numbers by tracing the network with
    `tinylib.analysis.receptive_field`; here you derive them by hand.

    Along one axis a unit of a feature map is described by three numbers:

    * `size` — how many input pixels it sees;
    * `jump` — the distance in input pixels between two neighbouring units (the stride so far);
    * `offset` — the input coordinate of the centre of unit 0, input pixel `i` being centred at `i`.

    The input image itself is `(size, jump, offset) = (1, 1, 0)`. A layer with kernel `k`,
    stride `s`, padding `p` and dilation `d` (effective kernel `ke = d (k - 1) + 1`) maps it to

    * `size + (ke - 1) * jump`,
    * `jump * s`,
    * `offset + ((ke - 1) / 2 - p) * jump`.

    Points: 3 + 3 + 2 = 8. Plain Python is enough.
    """, "intro"),
    readonly("setup", """
    import numpy as np
    """),
    md("""
    ## Task 1 — one layer (3 points)

    `rf_through(rf, kernel, stride=1, padding=0, dilation=1)` takes `rf = (size, jump,
    offset)` and returns the triple after the layer (floats).
    """, "task1"),
    answer("rf_through", """
    def rf_through(rf, kernel, stride=1, padding=0, dilation=1):
        \"\"\"``(size, jump, offset)`` of the units after one conv/pool layer.\"\"\"
        ### BEGIN SOLUTION
        size, jump, offset = rf
        ke = dilation * (kernel - 1) + 1
        return (float(size + (ke - 1) * jump), float(jump * stride),
                float(offset + ((ke - 1) / 2 - padding) * jump))
        ### END SOLUTION
    """),
    tests("test_rf_through", 3, """
    assert rf_through((1, 1, 0), 3, 1, 1) == (3, 1, 0)
    assert rf_through((1, 1, 0), 7, 2, 3) == (7, 2, 0)
    rf = (1, 1, 0)
    for k, s, p in [(7, 2, 3), (3, 2, 1)]:      # ResNet's stem: 7x7/2 conv, 3x3/2 max-pool
        rf = rf_through(rf, k, s, p)
    assert rf[:2] == (11, 4)
    ### BEGIN HIDDEN TESTS
    from torch import nn
    from tinylib.analysis import receptive_field as R
    rng = np.random.default_rng(5)
    for trial in range(25):
        layers, rf = [], (1.0, 1.0, 0.0)
        for _ in range(rng.integers(1, 7)):
            k, s = int(rng.integers(1, 8)), int(rng.integers(1, 4))
            p, d = int(rng.integers(0, k)), int(rng.integers(1, 4))
            layers.append(nn.Conv2d(1, 1, k, s, p, d))
            rf = rf_through(rf, k, s, p, d)
        ref = R.receptive_fields(nn.Sequential(*layers))["out"]
        assert np.allclose(rf, (ref.size[0], ref.stride[0], ref.offset[0])), (trial, layers)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 2 — the longest path through a bottleneck ResNet (3 points)

    The receptive field of a residual stage is that of its longest path (the shortcut sees
    less and is centred on the same point). Write `resnet_path(blocks=(3, 4, 6, 3),
    caffe_style=False)` returning a dict with keys `"stem"`, `"res2"`, `"res3"`, `"res4"`,
    `"res5"`, each a list of `(kernel, stride, padding, dilation)` tuples in order:

    * `stem`: the 7x7 convolution (stride 2, padding 3) and the 3x3 max-pool (stride 2,
      padding 1);
    * `resN`: `blocks[N - 2]` bottleneck blocks, each `1x1`, `3x3` (padding 1), `1x1`. The first
      block of `res3`, `res4` and `res5` has stride 2 — on its **3x3** in torchvision's ResNet,
      on its **first 1x1** in the original Caffe ResNet (`caffe_style=True`) that the paper
      used. All other layers have stride 1; dilation is 1 everywhere.

    Then walk it with your `rf_through`: ResNet-50's `res3` is 91 px in torchvision, 99 px in Caffe.
    """, "task2"),
    answer("resnet_path", """
    def resnet_path(blocks=(3, 4, 6, 3), caffe_style=False):
        \"\"\"Layers ``(k, s, p, d)`` of the longest path of a bottleneck ResNet, per stage.\"\"\"
        ### BEGIN SOLUTION
        path = {"stem": [(7, 2, 3, 1), (3, 2, 1, 1)]}
        for i, n in enumerate(blocks):
            layers = []
            for b in range(n):
                s = 2 if (i > 0 and b == 0) else 1
                if caffe_style:
                    layers += [(1, s, 0, 1), (3, 1, 1, 1), (1, 1, 0, 1)]
                else:
                    layers += [(1, 1, 0, 1), (3, s, 1, 1), (1, 1, 0, 1)]
            path[f"res{i + 2}"] = layers
        return path
        ### END SOLUTION
    """),
    tests("test_resnet_path", 3, """
    p = resnet_path()
    assert list(p) == ["stem", "res2", "res3", "res4", "res5"]
    assert p["stem"] == [(7, 2, 3, 1), (3, 2, 1, 1)]
    assert [len(p[k]) for k in ("res2", "res3", "res4", "res5")] == [9, 12, 18, 9]
    assert all(len(layer) == 4 for stage in p.values() for layer in stage)
    ### BEGIN HIDDEN TESTS
    import torch
    from tinylib.analysis import receptive_field as R
    from tinylib.models.backbones import resnet_features

    def walk(path):  # the arithmetic of Task 1, independent of the answer to it
        size, jump, out = 1, 1, {}
        for name, layers in path.items():
            for k, s, _pad, d in layers:
                size, jump = size + d * (k - 1) * jump, jump * s
            out[name] = (size, jump)
        return out

    known = {True: [35, 99, 291, 483], False: [35, 91, 267, 427]}   # ResNet-50, chapter 04
    for caffe in (True, False):
        got = walk(resnet_path((3, 4, 6, 3), caffe_style=caffe))
        assert [got[f"res{i}"][0] for i in range(2, 6)] == known[caffe], caffe
        assert [got[f"res{i}"][1] for i in range(2, 6)] == [4, 8, 16, 32]
    for depth, blocks in [(50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3))]:
        for caffe in (True, False):
            with torch.device("meta"):
                model = resnet_features(depth, caffe_style=caffe)
            ref = R.receptive_fields(model)
            got = walk(resnet_path(blocks, caffe_style=caffe))
            for stage, rf in ref.items():
                assert got[stage] == (rf.size[0], rf.stride[0]), (depth, caffe, stage)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Task 3 — where a unit looks (2 points)

    tinylib draws receptive fields as boxes in its continuous pixel coordinates, where input
    pixel `i` covers `[i, i + 1)`. Unit `(row, col)` of a map with `(size, jump, offset)`
    (the same along both axes) is centred on input pixel `offset + row * jump` vertically
    and `offset + col * jump` horizontally. `rf_box(rf, row, col)` returns its field as
    `(x1, y1, x2, y2)`: a `size x size` box with that centre (the centre of pixel `i` being
    `i + 0.5`). Note that it may extend beyond the image.
    """, "task3"),
    answer("rf_box", """
    def rf_box(rf, row=0, col=0):
        \"\"\"Receptive field of unit ``(row, col)`` as ``(x1, y1, x2, y2)``.\"\"\"
        ### BEGIN SOLUTION
        size, jump, offset = rf
        cx = offset + col * jump + 0.5
        cy = offset + row * jump + 0.5
        half = size / 2
        return (cx - half, cy - half, cx + half, cy + half)
        ### END SOLUTION
    """),
    tests("test_rf_box", 2, """
    assert np.allclose(rf_box((1, 1, 0)), (0, 0, 1, 1))        # a unit of the input is its pixel
    assert np.allclose(rf_box((3, 1, 0), row=1, col=2), (1, 0, 4, 3))
    ### BEGIN HIDDEN TESTS
    from tinylib.analysis import receptive_field as R
    rng = np.random.default_rng(6)
    for _ in range(30):
        size, jump = float(rng.integers(1, 500)), float(2 ** rng.integers(0, 6))
        offset = float(rng.integers(-20, 20)) / 2
        row, col = (int(v) for v in rng.integers(0, 40, 2))
        ref = R.RF((size, size), (jump, jump), (offset, offset)).box(row, col)
        assert np.allclose(rf_box((size, jump, offset), row, col), ref)
    ### END HIDDEN TESTS
    """),
    md("""
    ## Going further (not graded)

    * Walk `tinylib.models.backbones.build_backbone("bh_resnet50")` with
      `receptive_field.receptive_fields`: what does the bottom-heavy design do to context?
    * Chapter 04 (`notebooks/04_receptive_fields.ipynb`) compares these theoretical fields
      with the *effective* ones.
    """, "further"),
])
