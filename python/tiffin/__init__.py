"""tiffin from Python: one call from a fitted model to a verified package whose parity with the
original model is recorded in it, and packages loaded, verified and run.

    >>> import tiffin
    >>> exported = tiffin.export(pipeline, X_train, name="churn", version="1.0.0", out="dist")
    >>> exported.parity["probabilities"]["max_abs"]      # vs the scikit-learn pipeline itself
    >>> tiffin.Package(exported.archive).predict(X_test)["probabilities"]

Everything is done by the `tiffin` command (found in this environment's scripts, on PATH, or
in `$TIFFIN_BIN`): one implementation of pack, verify and predict, never a second in Python.
"""

from ._binary import TiffinError, find_tiffin
from ._export import Exported, ParityError, export
from ._package import Package, VerifyReport

__all__ = [
    "Exported",
    "Package",
    "ParityError",
    "TiffinError",
    "VerifyReport",
    "export",
    "find_tiffin",
]
