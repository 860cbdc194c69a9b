"""tiffin.export of PyTorch modules: an MLP on a table and a small CNN on images, each exported
with a dynamic batch dim, packed with the module's own outputs (eval mode, no gradients) as
parity evidence, verified and predicted through the package at another batch size.

Marked `torch`: run by `cargo xtask python --torch` in a virtualenv holding PyPI's torch (about
3 GB with its CUDA libraries, which CPU-only machines load and never use), not by `cargo xtask ci`.
"""

import json

import numpy as np
import pytest

import tiffin

pytestmark = pytest.mark.torch


def report(kind, exported):
    figures = {k: (v["max_abs"], v["max_rel"], v["mismatches"], v["compared"])
               for k, v in exported.parity.items()}
    print(f"PARITY {kind}: {json.dumps(figures)}")


def test_an_mlp_exports_with_a_dynamic_batch_and_agrees_with_the_module(tmp_path):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3), torch.nn.Softmax(dim=1)
    )
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    exported = tiffin.export(model, X, name="mlp", version="1.0.0", out=tmp_path,
                             license="MIT")
    report("PyTorch MLP", exported)
    assert exported.parity["output"]["mismatches"] == 0
    package = tiffin.Package(exported.archive)
    assert package.manifest["framework"]["name"] == "pytorch"
    assert package.signature["inputs"][0]["shape"][0] == "batch"
    assert package.verify().ok
    got = package.predict(X[:20])["output"]
    with torch.no_grad():
        want = model(torch.from_numpy(X[:20])).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6)


def test_a_cnn_on_images_agrees_with_the_module(tmp_path):
    import torch

    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 10),
    )
    images = torch.rand(16, 1, 12, 12)
    exported = tiffin.export(model, images, name="cnn", version="1.0.0", out=tmp_path)
    report("PyTorch CNN", exported)
    assert exported.parity["output"]["mismatches"] == 0
    package = tiffin.Package(exported.folder)
    assert package.signature["inputs"][0]["shape"][1:] == [1, 12, 12]
    got = package.predict(images[:3].numpy())["output"]
    with torch.no_grad():
        want = model(images[:3]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_a_module_returning_no_tensor_is_refused_with_the_reason(tmp_path):
    import torch

    class Dictionary(torch.nn.Module):
        def forward(self, x):
            return {"y": x * 2}

    with pytest.raises(TypeError, match="tensor"):
        tiffin.export(Dictionary(), np.zeros((4, 2), np.float32), name="d", version="1.0.0",
                      out=tmp_path)
