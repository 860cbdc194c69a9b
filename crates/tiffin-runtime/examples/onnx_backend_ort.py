"""The ONNX backend node tests through Python's onnxruntime, with the rules of the Rust
example `onnx_backend` (the same cases counted as carried, the same tolerance: rtol 1e-3,
atol 1e-7, NaN equal), so that the two lists of passing cases can be compared one by one.

Usage: python onnx_backend_ort.py NODE_DIR PASSED_FILE
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

CARRIED = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}


def read(path):
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    if t.data_type not in CARRIED or not t.dims and t.data_type == 0:
        return None
    return numpy_helper.to_array(t)


def main():
    node, passed_file = Path(sys.argv[1]), Path(sys.argv[2])
    ort.set_default_logger_severity(4)
    passed, carried = [], 0
    for case in sorted(p for p in node.iterdir() if (p / "model.onnx").is_file()):
        data = case / "test_data_set_0"
        try:
            inputs = [read(p) for p in sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem[6:]))]
            outputs = [read(p) for p in sorted(data.glob("output_*.pb"), key=lambda p: int(p.stem[7:]))]
        except Exception:
            continue
        if any(x is None for x in inputs + outputs):
            continue
        model = onnx.load(str(case / "model.onnx"))
        graph_inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        if len(graph_inputs) != len(inputs) or len(model.graph.output) != len(outputs):
            continue
        carried += 1
        try:
            s = ort.InferenceSession(str(case / "model.onnx"), providers=["CPUExecutionProvider"])
            got = s.run(None, dict(zip([i.name for i in s.get_inputs()], inputs)))
        except Exception:
            continue
        ok = True
        for g, w in zip(got, outputs):
            g, w = np.asarray(g), np.asarray(w)
            if g.shape != w.shape or g.dtype != w.dtype:
                ok = False
            elif g.dtype.kind == "f":
                ok &= bool(np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-3, atol=1e-7, equal_nan=True))
            else:
                ok &= bool(np.array_equal(g, w))
        if ok:
            passed.append(case.name)
    passed_file.write_text("".join(n + "\n" for n in passed))
    print(f"python onnxruntime {ort.__version__}: {carried} carried cases, {len(passed)} passed")


if __name__ == "__main__":
    main()
