"""`export`: from a fitted model and sample inputs to a verified tiffin package, with the
original model's outputs recorded as parity evidence.

The export goes to ONNX with the converter the model's framework needs, the authoring folder
(`tiffin.toml`, example inputs, the original model's outputs on them) is written from what the
model and the environment say, and `tiffin pack` does the rest: it runs the exported model on
the examples, compares with the original outputs and refuses past the parity tolerance.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from . import _toml
from ._binary import TiffinError, run, run_json
from ._package import Package

__all__ = ["ParityError", "Exported", "export"]

#: The ONNX opsets the exports target: what tract (tiffin's runtime) and onnxruntime both run.
OPSET = 17
ML_OPSET = 3


class ParityError(TiffinError):
    """The exported model disagrees with the original model past the parity tolerance; the
    message holds tiffin's table (output, agreement, values outside, max abs and rel)."""


@dataclass(frozen=True)
class Exported:
    """A package `export` wrote."""

    package: Package
    folder: Path
    archive: Path
    digest: str
    #: Per output: the tolerance, values compared, values outside, max abs and rel difference.
    parity: dict[str, dict[str, Any]]
    #: The authoring folder it was packed from (kept when `workdir` was given).
    source: Path


def export(
    model: Any,
    X: Any,
    *,
    name: str,
    version: str,
    out: str | os.PathLike[str] = ".",
    description: str | None = None,
    license: str | None = None,
    authors: Sequence[str] = (),
    data: str | None = None,
    examples: int = 8,
    parity: dict[str, dict[str, float]] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Exported:
    """Exports `model` to ONNX and packs it with its contract, metadata and parity evidence.

    Args:
        model: a fitted scikit-learn estimator or Pipeline (exported with skl2onnx), a fitted
            LightGBM LGBMClassifier or LGBMRegressor (onnxmltools), a PyTorch module
            (torch.onnx, dynamic batch dim, weights in the one file), or the path of an ONNX
            file (then no original model's outputs exist and no parity is recorded).
        X: sample inputs: a pandas DataFrame (its column names become the feature names), a
            2-D numpy array, or for a PyTorch module an array or tensor of any rank whose first
            dim is the batch. The first `examples` rows become the golden examples.
        name, version: the package name and semantic version.
        out: where `NAME/VERSION/` and `NAME-VERSION.tiffin` are written.
        description, license (SPDX), authors, data: metadata for the manifest.
        parity: per-output parity tolerances, e.g. `{"variable": {"abs": 1e-4}}` or
            `{"label": {"min_agreement": 0.99}}`; the defaults are abs 1e-6 + rel 1e-6 for
            floats and exact agreement for labels.
        workdir: keep the authoring folder there (default: a temporary folder).
        force: replace an existing package of the same name and version.

    Raises:
        ParityError: the exported model disagrees with the original model's outputs.
        ImportError: the converter the model needs is not installed (its name is said).
        TiffinError: tiffin refused the package, with its reason.
    """
    # The original model sees the sample as given (float64, a DataFrame with its column names);
    # the export sees it as float32, as every client of the package will send it. Parity covers
    # that cast too: a model whose outputs hang on the last digits of float64 inputs fails it.
    sample = X.iloc[: max(1, examples)] if hasattr(X, "iloc") else X[: max(1, examples)]
    rows, feature_names = _rows(sample)
    with tempfile.TemporaryDirectory(prefix="tiffin-export-") as temp:
        source = Path(workdir) if workdir is not None else Path(temp) / name
        source.mkdir(parents=True, exist_ok=True)
        if isinstance(model, (str, os.PathLike)):
            framework, pins = None, []
            shutil.copyfile(model, source / "model.onnx")
            expected = None
        elif _is_sklearn(model):
            framework, pins = _sklearn_onnx(model, rows, source / "model.onnx")
            expected = _sklearn_outputs(model, sample)
        elif _is_lightgbm(model):
            framework, pins = _lightgbm_onnx(model, rows, source / "model.onnx")
            expected = _sklearn_outputs(model, sample)
        elif _is_torch(model):
            framework, pins, expected = _torch_onnx(model, rows, source / "model.onnx")
        else:
            raise TypeError(
                f"cannot export a {type(model).__module__}.{type(model).__qualname__}: tiffin "
                "exports fitted scikit-learn estimators and pipelines, LightGBM models "
                "(LGBMClassifier, LGBMRegressor), PyTorch modules (torch.nn.Module), and packs "
                "ONNX files given by path"
            )
        authoring = tomllib.loads(
            run("init", source / "model.onnx", "--stdout", "--name", name, "--version", version)
        )
        _describe(authoring, framework, pins, description, license, authors, data)
        _name_features_and_classes(authoring, feature_names, model)
        (source / "examples.json").write_text(
            json.dumps({authoring["signature"]["inputs"][0]["name"]: rows.tolist()})
        )
        table: dict[str, Any] = {"inputs": "examples.json"}
        if expected is not None:
            shaped = _shaped(expected, authoring["signature"]["outputs"])
            (source / "expected.json").write_text(json.dumps(shaped))
            table["expected"] = "expected.json"
            if framework is not None:
                table["expected_from"] = framework
            if parity:
                table["parity"] = parity
        authoring["examples"] = table
        (source / "tiffin.toml").write_text(_toml.dumps(authoring))

        args = ["pack", source, "--out", out]
        if force:
            args.append("--force")
        try:
            packed = run_json(*args)
        except TiffinError as error:
            if "disagrees with the original model" in str(error):
                raise ParityError(str(error)) from None
            raise
        package = Package(packed["archive"])
        return Exported(
            package=package,
            folder=Path(packed["folder"]),
            archive=Path(packed["archive"]),
            digest=packed["digest"],
            parity=packed.get("parity") or {},
            source=source,
        )


def _rows(X: Any):
    """The sample as float32 rows, and the feature names a DataFrame gives. Tabular models take
    2-D rows; a torch module may take any rank (images, sequences), its first dim the batch."""
    import numpy as np

    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float32), [str(c) for c in X.columns]
    if type(X).__module__.startswith("torch"):
        X = X.detach().cpu().numpy()
    array = np.asarray(X, dtype=np.float32)
    if array.ndim < 1:
        raise ValueError(f"X must hold rows (its first dim the batch), got shape {array.shape}")
    return array, None


def _needed(module: str, what: str, install: str) -> Any:
    """Imports the exporter `module`; when it is missing, the error says what needs it and the
    `pip install` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"exporting {what} needs {module.split('.')[0]}: pip install {install}"
        ) from error


def _two_dimensional(rows, kind: str) -> None:
    if rows.ndim != 2:
        raise ValueError(f"X for a {kind} model must be 2-D (rows, features), got {rows.shape}")


def _is_sklearn(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn.") and hasattr(model, "predict")


def _versions(*dists: str) -> list[str]:
    pins = []
    for dist in dists:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def _sklearn_onnx(model: Any, rows, path: Path):
    _two_dimensional(rows, "scikit-learn")
    to_onnx = _needed("skl2onnx", "a scikit-learn model", "skl2onnx onnx").to_onnx
    if type(model).__name__.startswith("HistGradientBoosting"):
        raise TypeError(
            "HistGradientBoosting models do not convert with skl2onnx 1.20.0 (AttributeProto.ints: "
            "Expected an int, got a boolean; fixed on skl2onnx main, not released): use "
            "GradientBoosting or LightGBM, or export by hand and pass the ONNX file"
        )
    # Classifiers get tensor outputs (no ZipMap): a list of dicts is no tensor, and tiffin
    # serves tensors. Regressors have no such option and refuse it.
    options = {"zipmap": False} if hasattr(model, "predict_proba") else None
    onnx_model = to_onnx(
        model,
        rows[:1],
        options=options,
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
    )
    path.write_bytes(onnx_model.SerializeToString())
    version = importlib.metadata.version("scikit-learn")
    pins = _versions("scikit-learn", "numpy", "scipy", "skl2onnx", "onnx")
    return {"name": "scikit-learn", "version": version}, pins


def _is_lightgbm(model: Any) -> bool:
    return type(model).__module__.startswith("lightgbm.") and hasattr(model, "booster_")


def _lightgbm_onnx(model: Any, rows, path: Path):
    _two_dimensional(rows, "LightGBM")
    convert_lightgbm = _needed("onnxmltools", "a LightGBM model", "onnxmltools onnx").convert_lightgbm
    FloatTensorType = _needed(
        "onnxmltools.convert.common.data_types", "a LightGBM model", "onnxmltools onnx"
    ).FloatTensorType
    # onnxmltools converts LightGBM up to opset 15 (it refuses 17); tract runs both. Its own
    # FloatTensorType, not skl2onnx's, which it refuses.
    onnx_model = convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, rows.shape[1]]))],
        zipmap=False,
        target_opset=15,
    )
    path.write_bytes(onnx_model.SerializeToString())
    version = importlib.metadata.version("lightgbm")
    pins = _versions("lightgbm", "numpy", "scipy", "scikit-learn", "onnxmltools", "onnx")
    return {"name": "lightgbm", "version": version}, pins


def _is_torch(model: Any) -> bool:
    return any(
        c.__module__ == "torch.nn.modules.module" and c.__name__ == "Module"
        for c in type(model).__mro__
    )


def _torch_onnx(model: Any, rows, path: Path):
    """Exports with torch.onnx's dynamo exporter, the batch dim dynamic and the weights inside
    the one file; returns the framework, the pins and the module's outputs (eval mode, no
    gradients) on the sample."""
    import numpy as np

    torch = _needed("torch", "a PyTorch module", "torch")
    # The dynamo exporter's dependencies, which torch does not install.
    _needed("onnxscript", "a PyTorch module", "onnxscript onnx")
    # The sample decides the exported batch size unless the dim is dynamic, and a batch of one
    # is specialised by torch.export: two rows at least.
    if rows.shape[0] < 2:
        raise ValueError("X must hold at least two rows to export a dynamic batch dim")
    model.eval()
    sample = torch.from_numpy(np.ascontiguousarray(rows))
    with torch.no_grad():
        result = model(sample)
    results = result if isinstance(result, (tuple, list)) else (result,)
    if not all(isinstance(r, torch.Tensor) for r in results):
        raise TypeError("the module must return a tensor or a tuple of tensors")
    names = ["output"] if len(results) == 1 else [f"output_{i}" for i in range(len(results))]
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model,
        (sample,),
        input_names=["input"],
        output_names=names,
        dynamic_shapes=({0: batch},),
        # One file: the default writes the weights beside the graph, which would be a second
        # file to carry (tiffin packs a folder model too, but one file is what users expect).
        external_data=False,
        dynamo=True,
        opset_version=18,
        verbose=False,
    )
    program.save(str(path))
    expected = {
        name: r.detach().cpu().numpy().astype(np.float64).tolist()
        for name, r in zip(names, results)
    }
    version = importlib.metadata.version("torch")
    pins = _versions("torch", "numpy", "onnxscript", "onnx")
    return {"name": "pytorch", "version": version}, pins, expected


def _sklearn_outputs(model: Any, sample) -> dict[str, Any]:
    """The original model's outputs on the sample as given, by the output names skl2onnx gives
    them."""
    import numpy as np

    if hasattr(model, "predict_proba"):
        return {
            "label": np.asarray(model.predict(sample)).tolist(),
            "probabilities": np.asarray(model.predict_proba(sample), dtype=np.float64).tolist(),
        }
    return {"variable": np.asarray(model.predict(sample), dtype=np.float64).tolist()}


def _shaped(expected: dict[str, Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each original output given the rank of the graph's output of that name (a regressor's
    predict gives one value per row where the graph gives `[batch, 1]`); outputs the graph does
    not have are left out."""
    import numpy as np

    shaped = {}
    for spec in outputs:
        if spec["name"] not in expected:
            continue
        value = np.asarray(expected[spec["name"]])
        if value.ndim == 1 and len(spec["shape"]) == 2:
            value = value.reshape(-1, 1)
        shaped[spec["name"]] = value.tolist()
    return shaped


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def _describe(authoring, framework, pins, description, license, authors, data) -> None:
    package = authoring["package"]
    if description:
        package["description"] = description
    if license:
        package["license"] = license
    if authors:
        package["authors"] = list(authors)
    if framework:
        authoring["framework"] = framework
    if pins:
        authoring.setdefault("runtime", {})["python"] = pins
    training = {}
    commit = _git_commit()
    if commit:
        training["commit"] = commit
    if data:
        training["data"] = data
    if training:
        authoring["training"] = training


def _name_features_and_classes(authoring, feature_names, model) -> None:
    inputs = authoring["signature"]["inputs"]
    if feature_names and len(inputs) == 1:
        inputs[0]["feature_names"] = feature_names
    classes = getattr(model, "classes_", None)
    if classes is None:
        return
    labels = [str(c) for c in classes]
    # The label output holds the classes themselves: labels name them only when they are the
    # indices 0..n-1 (a string label output carries its names already).
    indices = [str(i) for i in range(len(labels))]
    for output in authoring["signature"]["outputs"]:
        if output["name"] == "probabilities" or (output["name"] == "label" and labels == indices):
            output["class_labels"] = labels
