"""onnxruntime's side of `cargo xtask bench runtime`: load time and run time per fixture model.

For every fixture folder with model.onnx and reference.json: session creation time (one thread,
all graph optimizations, the same work tract's load + optimize does), then the median time of a
run at batch 1 and at batch 64 on the reference inputs (rows repeated when the reference holds
fewer). Fixtures whose rows are not independent (silero_vad) run at their reference shape only.
Usage: python ort_models.py FIXTURES_DIR [--filter TEXT]
"""

import base64
import json
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort

DTYPES = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "u8": np.uint8, "bool": np.bool_}
WHOLE = {"silero_vad"}


def tensor(t):
    dtype = DTYPES[t["dtype"]]
    if "b64" in t:
        return np.frombuffer(base64.b64decode(t["b64"]), dtype=dtype).reshape(t["shape"])
    return np.array(t["data"], dtype=dtype).reshape(t["shape"])


def rows(a, n):
    reps = -(-n // a.shape[0])
    return np.concatenate([a] * reps)[:n]


def median_ms(fn, budget=1.0, least=5):
    times, start = [], time.perf_counter()
    while len(times) < least or time.perf_counter() - start < budget:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 10000:
            break
    return float(np.median(times)) * 1e3


def main():
    fixtures = pathlib.Path(sys.argv[1])
    filt = sys.argv[sys.argv.index("--filter") + 1] if "--filter" in sys.argv else ""
    print(f"onnxruntime {ort.__version__}, 1 thread; medians in ms")
    print(f"{'fixture':<22}{'load':>10}{'batch 1':>12}{'batch 64':>12}{'per row @64':>14}")
    for folder in sorted(p for p in fixtures.iterdir() if (p / "reference.json").exists()):
        if filt not in folder.name:
            continue
        ref = json.loads((folder / "reference.json").read_text())
        inputs = {k: tensor(v) for k, v in ref["inputs"].items()}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        model = str(folder / "model.onnx")
        load = median_ms(lambda: ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]), 0.5, 3)
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        if folder.name in WHOLE:
            b1 = median_ms(lambda: sess.run(None, inputs))
            print(f"{folder.name:<22}{load:>10.3f}{b1:>12.3f}{'-':>12}{'-':>14}")
            continue
        one = {k: rows(v, 1) for k, v in inputs.items()}
        many = {k: rows(v, 64) for k, v in inputs.items()}
        b1 = median_ms(lambda: sess.run(None, one))
        b64 = median_ms(lambda: sess.run(None, many))
        print(f"{folder.name:<22}{load:>10.3f}{b1:>12.4f}{b64:>12.4f}{b64 / 64:>14.5f}")


if __name__ == "__main__":
    main()
