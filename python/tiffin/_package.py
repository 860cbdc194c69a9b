"""`Package`: a packed model from Python, its manifest, verification and predictions, through the
`tiffin` command."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._binary import run, run_json, run_report

__all__ = ["Package", "VerifyReport"]


@dataclass(frozen=True)
class VerifyReport:
    """What `tiffin verify` found: `ok` is true when there is no problem."""

    ok: bool
    digest: str
    problems: list[dict[str, Any]]
    examples: list[dict[str, Any]] | None
    parity: dict[str, dict[str, Any]] | None


class Package:
    """A tiffin package (a `NAME/VERSION/` folder or a `.tiffin` archive).

    >>> pkg = Package("out/churn-1.0.0.tiffin")            # doctest: +SKIP
    >>> pkg.predict(df)["probabilities"]                   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        info = run_json("inspect", self.path)
        #: The packed manifest (`tiffin.json`) as a dict.
        self.manifest: dict[str, Any] = info["manifest"]
        #: The package digest, `sha256:...`.
        self.digest: str = info["digest"]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def signature(self) -> dict[str, Any]:
        """Inputs and outputs: names, dtypes, shapes, feature names and class labels."""
        return self.manifest["signature"]

    @property
    def parity(self) -> dict[str, Any] | None:
        """The comparison with the original model `tiffin pack` recorded, if any."""
        return (self.manifest.get("examples") or {}).get("parity")

    def verify(self) -> VerifyReport:
        """Checks every digest, the signature against the graph, the golden examples and the
        parity with the original model. A failed check is a report with `ok` false."""
        passed, report = run_report("verify", self.path)
        return VerifyReport(
            ok=passed and not report["problems"],
            digest=report["digest"],
            problems=report["problems"],
            examples=report.get("examples"),
            parity=report.get("parity"),
        )

    def predict(self, X: Any) -> dict[str, Any]:
        """Runs the model on `X` and returns each output by name.

        `X` is a pandas DataFrame (its column names matched to the feature names), a numpy
        array or nested lists for a one-input model, or a dict of those by input name. Outputs
        come back as numpy arrays, except outputs with class labels, which come back as lists of
        labels; with pandas given, a DataFrame per two-dimensional output with labels."""
        payload = _payload(X, self.signature)
        answer = json.loads(run("predict", self.path, "--input", json.dumps(payload)))
        return _outputs(answer, self.signature, X)

    def __repr__(self) -> str:
        return f"Package({str(self.path)!r}: {self.name} {self.version}, {self.digest[:19]}...)"


def _payload(X: Any, signature: dict[str, Any]) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pandas is optional
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        return {"columns": [str(c) for c in X.columns], "data": X.to_numpy().tolist()}
    if isinstance(X, dict):
        return {name: _plain(value) for name, value in X.items()}
    name = signature["inputs"][0]["name"]
    if len(signature["inputs"]) != 1:
        names = [i["name"] for i in signature["inputs"]]
        raise TypeError(f"this model has {len(names)} inputs: pass a dict keyed by {names}")
    return {name: _plain(X)}


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _outputs(answer: dict[str, Any], signature: dict[str, Any], X: Any) -> dict[str, Any]:
    import numpy as np

    specs = {o["name"]: o for o in signature["outputs"]}
    out: dict[str, Any] = {}
    for name, value in answer.items():
        spec = specs.get(name, {})
        labels = spec.get("class_labels")
        array = np.asarray(value)
        if labels and array.ndim == 2 and array.shape[1] == len(labels):
            try:
                import pandas as pd

                if isinstance(X, pd.DataFrame):
                    out[name] = pd.DataFrame(array, columns=labels, index=X.index)
                    continue
            except ImportError:
                pass
            out[name] = array
        elif labels and array.ndim == 1:
            out[name] = list(value)
        else:
            out[name] = array
    return out
