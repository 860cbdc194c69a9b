"""onnxruntime's speed on the tree ensemble benchmarks of benches/trees.rs, for comparison.

Same fixtures (forest300, breast_cancer_rf), same rows (the first 1 or 64 rows of each
fixture's reference input), one intra-op and one inter-op thread, CPUExecutionProvider. Each
case is timed with timeit: ROUNDS rounds of enough calls to last about 0.2 s each; the median
round gives the time per call, which is divided by the batch size for the time per row. The
figures include the Python call overhead of `InferenceSession.run` (about a microsecond or two),
as the criterion figures include `Model::run`'s input checks and tensor conversions.

Run from the repository root:

    fixtures/.venv/bin/python crates/tiffin-runtime/benches/ort_trees.py
"""

import base64
import json
import statistics
import timeit
from pathlib import Path

import numpy as np
import onnxruntime as ort

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
ROUNDS = 15


def reference_input(name):
    """The fixture's reference input `X`, a float32 matrix (see fixtures/README.md)."""
    x = json.loads((FIXTURES / name / "reference.json").read_text())["inputs"]["X"]
    assert x["dtype"] == "f32", f"{name}: X is {x['dtype']}"
    if "b64" in x:
        values = np.frombuffer(base64.b64decode(x["b64"]), dtype="<f4")
    else:
        values = np.array(x["data"], dtype=np.float32)
    return values.reshape(x["shape"])


def main():
    print(f"onnxruntime {ort.__version__}, 1 thread")
    print(f"{'fixture':<18} {'batch':>5} {'per call (us)':>14} {'per row (us)':>13}")
    for name in ["forest300", "breast_cancer_rf"]:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(FIXTURES / name / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        x = reference_input(name)
        for batch in [1, 64]:
            feed = {"X": np.ascontiguousarray(x[:batch])}
            timer = timeit.Timer(lambda: session.run(None, feed))
            calls, _ = timer.autorange()
            calls = max(calls, int(calls * 0.2 / max(timer.timeit(calls), 1e-9)))
            per_call = statistics.median(t / calls for t in timer.repeat(ROUNDS, calls))
            print(f"{name:<18} {batch:>5} {per_call * 1e6:>14.2f} {per_call / batch * 1e6:>13.3f}")


if __name__ == "__main__":
    main()
