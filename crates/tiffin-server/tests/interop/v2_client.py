"""Interop test of `tiffin serve` with NVIDIA's Triton client (`tritonclient.http`), the V2 client
most tools use.

`cargo xtask ci` (step interop-v2) packs fixtures/iris, fixtures/breast_cancer and
fixtures/mnist_cnn, serves them, and runs this script with the pinned environment of
requirements.txt beside it:

    python v2_client.py 127.0.0.1:PORT path/to/fixtures

Every check prints one line (`ok` or `FAIL` and why); the exit status is 1 if any failed. Outputs
are compared with the onnxruntime answers stored in each fixture's reference.json: floats within
1e-5 plus 1e-5 of the value (so one tolerance holds at every magnitude, whichever kernels the CPU
gets), labels and integers exactly.
"""

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

# How far a float output may be from onnxruntime's: `|got - want| <= ABS + REL * |want|`, as the
# golden examples and the Rust parity tests compare. An absolute bound alone would ask for bit
# equality on values over 128, where one f32 ulp is already 1.5e-5.
ABS = 1e-5
REL = 1e-5


def within(got, want):
    """Elementwise: is each of `got` within ABS + REL * |want| of `want` (NaN equal to NaN)?"""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    return both_nan | (np.abs(got - want) <= ABS + REL * np.abs(want))

# reference.json names dtypes as tiffin.toml does; these are their numpy types.
NUMPY_DTYPES = {
    "bool": np.bool_,
    "u8": np.uint8,
    "u16": np.uint16,
    "u32": np.uint32,
    "u64": np.uint64,
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
    "f16": np.float16,
    "f32": np.float32,
    "f64": np.float64,
    "string": np.object_,
}


class CheckFailed(Exception):
    """A check found the server answering something else than expected."""


def expect(condition, message):
    # Not `assert`: `python -O` would drop the checks and pass everything.
    if not condition:
        raise CheckFailed(message)


def load_tensor(spec):
    """A reference tensor: `data` is a flat list, `b64` the little-endian bytes."""
    dtype = np.dtype(NUMPY_DTYPES[spec["dtype"]])
    if "b64" in spec:
        raw = base64.b64decode(spec["b64"])
        array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    else:
        array = np.array(spec["data"], dtype=dtype)
    return array.reshape(spec["shape"])


def load_reference(fixtures, name):
    with open(Path(fixtures) / name / "reference.json", encoding="utf-8") as f:
        reference = json.load(f)
    inputs = {k: load_tensor(v) for k, v in reference["inputs"].items()}
    outputs = {k: load_tensor(v) for k, v in reference["outputs"].items()}
    return inputs, outputs


def compare(name, got, want):
    """Fails unless an output matches onnxruntime's, naming the output and the first difference."""
    expect(got is not None, f"output {name} missing from the answer")
    expect(
        list(got.shape) == list(want.shape),
        f"output {name}: shape {list(got.shape)}, expected {list(want.shape)}",
    )
    if want.dtype == np.object_:
        # BYTES come back as an object array of bytes; the reference holds str.
        decoded = [v.decode("utf-8") if isinstance(v, bytes) else v for v in got.ravel()]
        expected = list(want.ravel())
        for i, (a, b) in enumerate(zip(decoded, expected)):
            expect(a == b, f"output {name}: element {i} is {a!r}, expected {b!r}")
    elif np.issubdtype(want.dtype, np.floating):
        expect(got.dtype == want.dtype, f"output {name}: dtype {got.dtype}, expected {want.dtype}")
        ok = within(got, want)
        first = int(np.argmin(ok.ravel())) if ok.size else 0
        expect(
            bool(np.all(ok)),
            f"output {name}: element {first} is {got.ravel()[first]!r}, expected "
            f"{want.ravel()[first]!r} within {ABS} + {REL} of it",
        )
    else:
        expect(got.dtype == want.dtype, f"output {name}: dtype {got.dtype}, expected {want.dtype}")
        expect(np.array_equal(got, want), f"output {name}: values differ from the reference")


def make_inputs(module, arrays, binary, datatype=None):
    inputs = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, list(array.shape), datatype or np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def outputs_as_sent(response):
    """How each output came back: `binary` (binary_data_size) or `json` (data)."""
    shown = {}
    for output in response["outputs"]:
        binary = "binary_data_size" in (output.get("parameters") or {})
        shown[output["name"]] = "binary" if binary else "json"
    return shown


class Recorder:
    """Wraps the client's POST to keep the last answer's Content-Encoding, which InferResult hides:
    without it a server ignoring Accept-Encoding would pass the compression checks."""

    def __init__(self, client):
        self.encoding = None
        post = client._post

        def recorded(*args, **kwargs):
            response = post(*args, **kwargs)
            self.encoding = response.get("Content-Encoding")
            return response

        client._post = recorded


def infer_and_compare(
    client,
    model,
    reference,
    input_binary,
    output_binary,
    only=None,
    expected_encoding=None,
    recorder=None,
    **options,
):
    """Runs one inference and compares every output asked for with the reference.

    `output_binary` is True or False to list every output with that `binary_data`, a dict by name
    for mixed requests, or None to list none (the client then sets `binary_data_output`).
    """
    inputs_ref, outputs_ref = reference
    wanted = list(only or outputs_ref)
    if output_binary is None:
        outputs = None
    else:
        per_output = output_binary if isinstance(output_binary, dict) else dict.fromkeys(wanted, output_binary)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=per_output[n]) for n in wanted]
    request_id = f"interop-{model}-{input_binary}-{output_binary}"
    result = client.infer(
        model,
        make_inputs(httpclient, inputs_ref, input_binary),
        outputs=outputs,
        request_id=request_id,
        **options,
    )
    response = result.get_response()
    expect(response.get("model_name") == model, f"model_name is {response.get('model_name')!r}")
    expect(response.get("id") == request_id, f"id is {response.get('id')!r}, expected {request_id!r}")
    sent = outputs_as_sent(response)
    expect(sorted(sent) == sorted(wanted), f"outputs {sorted(sent)}, asked for {sorted(wanted)}")
    for name in wanted:
        if outputs is None:
            want_binary = True
        else:
            want_binary = per_output[name]
        expect(
            sent[name] == ("binary" if want_binary else "json"),
            f"output {name} came back as {sent[name]}, asked for {'binary' if want_binary else 'json'}",
        )
        compare(name, result.as_numpy(name), outputs_ref[name])
    if recorder is not None:
        expect(
            recorder.encoding == expected_encoding,
            f"answer Content-Encoding is {recorder.encoding!r}, expected {expected_encoding!r}",
        )
    return f"{len(wanted)} output(s), {next(iter(inputs_ref.values())).shape[0]} rows"


class Checks:
    def __init__(self):
        self.failed = []
        self.count = 0

    def run(self, name, check, *args, **kwargs):
        self.count += 1
        try:
            detail = check(*args, **kwargs)
        except Exception as error:  # every failure is reported, then the next check runs
            self.failed.append(name)
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
        else:
            print(f"ok   {name}" + (f" ({detail})" if detail else ""), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="host:port of tiffin serve, without scheme")
    parser.add_argument("fixtures", help="the fixtures folder holding each model's reference.json")
    args = parser.parse_args()

    client = httpclient.InferenceServerClient(url=args.url, network_timeout=120.0)
    recorder = Recorder(client)
    iris = load_reference(args.fixtures, "iris")
    breast_cancer = load_reference(args.fixtures, "breast_cancer")
    mnist = load_reference(args.fixtures, "mnist_cnn")
    checks = Checks()

    # Health and metadata.
    checks.run("is_server_live", lambda: expect(client.is_server_live(), "not live"))
    checks.run("is_server_ready", lambda: expect(client.is_server_ready(), "not ready"))
    for model in ["iris", "breast_cancer", "mnist_cnn"]:
        checks.run(f"is_model_ready({model})", lambda m=model: expect(client.is_model_ready(m), "not ready"))
    # Triton clients name versions by a bare major; the server picks the newest 1.x.y.
    checks.run(
        "is_model_ready(iris, version 1)",
        lambda: expect(client.is_model_ready("iris", "1"), "not ready"),
    )
    checks.run(
        "is_model_ready(unknown model) is false",
        lambda: expect(not client.is_model_ready("no_such_model"), "ready"),
    )

    def server_metadata():
        metadata = client.get_server_metadata()
        expect("binary_tensor_data" in metadata.get("extensions", []), f"extensions {metadata.get('extensions')}")
        expect(metadata.get("name"), "no name")
        return f"{metadata['name']} {metadata.get('version')}, extensions {metadata['extensions']}"

    checks.run("get_server_metadata", server_metadata)

    def model_metadata():
        metadata = client.get_model_metadata("iris")
        expect(metadata.get("name") == "iris", f"name {metadata.get('name')!r}")
        expect(
            metadata.get("inputs") == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}],
            f"inputs {metadata.get('inputs')}",
        )
        expect(
            metadata.get("outputs")
            == [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
            ],
            f"outputs {metadata.get('outputs')}",
        )
        expect("1.0.0" in metadata.get("versions", []), f"versions {metadata.get('versions')}")

    checks.run("get_model_metadata(iris)", model_metadata)

    def model_config():
        config = client.get_model_config("iris")
        expect(config.get("name") == "iris", f"name {config.get('name')!r}")
        expect(config.get("max_batch_size") == 0, f"max_batch_size {config.get('max_batch_size')}")
        inputs = [(i["name"], i["data_type"], i["dims"]) for i in config.get("input", [])]
        expect(inputs == [("X", "TYPE_FP32", [-1, 4])], f"input {inputs}")
        outputs = [(o["name"], o["data_type"], o["dims"]) for o in config.get("output", [])]
        expect(
            outputs == [("label", "TYPE_STRING", [-1]), ("probabilities", "TYPE_FP32", [-1, 3])],
            f"output {outputs}",
        )

    checks.run("get_model_config(iris)", model_config)

    # Inference on iris in every combination of input and output encodings.
    for input_binary in [True, False]:
        for output_binary in [True, False, None]:
            shown = {True: "binary", False: "json", None: "unlisted"}
            checks.run(
                f"infer iris: input {shown[input_binary]}, outputs {shown[output_binary]}",
                infer_and_compare,
                client,
                "iris",
                iris,
                input_binary,
                output_binary,
            )
    checks.run(
        "infer iris: outputs mixed (label binary, probabilities json)",
        infer_and_compare,
        client,
        "iris",
        iris,
        True,
        {"label": True, "probabilities": False},
    )
    checks.run(
        "infer iris: only probabilities asked for",
        infer_and_compare,
        client,
        "iris",
        iris,
        True,
        True,
        only=["probabilities"],
    )
    checks.run(
        "infer iris: model_version 1",
        infer_and_compare,
        client,
        "iris",
        iris,
        True,
        True,
        model_version="1",
    )

    for input_binary, output_binary in [(True, True), (False, False)]:
        shown = "binary" if input_binary else "json"
        checks.run(
            f"infer breast_cancer: {shown}",
            infer_and_compare,
            client,
            "breast_cancer",
            breast_cancer,
            input_binary,
            output_binary,
        )
        checks.run(
            f"infer mnist_cnn: {shown}",
            infer_and_compare,
            client,
            "mnist_cnn",
            mnist,
            input_binary,
            output_binary,
        )

    # Compression, both ways; the answer's Content-Encoding is checked, not only the values.
    for algorithm in ["gzip", "deflate"]:
        checks.run(
            f"infer iris: request compressed with {algorithm}",
            infer_and_compare,
            client,
            "iris",
            iris,
            True,
            True,
            request_compression_algorithm=algorithm,
            recorder=recorder,
        )
        checks.run(
            f"infer mnist_cnn: response compressed with {algorithm}",
            infer_and_compare,
            client,
            "mnist_cnn",
            mnist,
            True,
            True,
            response_compression_algorithm=algorithm,
            expected_encoding=algorithm,
            recorder=recorder,
        )
        checks.run(
            f"infer iris: json both ways, both compressed with {algorithm}",
            infer_and_compare,
            client,
            "iris",
            iris,
            False,
            False,
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
            expected_encoding=algorithm,
            recorder=recorder,
        )

    # Errors must reach the caller as the server's message, with the status.
    def refused(model, inputs, status, words):
        try:
            client.infer(model, inputs)
        except InferenceServerException as error:
            message = error.message()
            expect(error.status() == status, f"status {error.status()}, expected {status}: {message}")
            for word in words:
                expect(word in message, f"message does not name {word!r}: {message}")
            return f"{status}: {message}"
        raise CheckFailed("the request was accepted")

    x64 = iris[0]["X"].astype(np.float64)
    for binary in [True, False]:
        checks.run(
            f"infer iris with FP64 X ({'binary' if binary else 'json'}) is refused",
            refused,
            "iris",
            make_inputs(httpclient, {"X": x64}, binary),
            "400",
            ["X"],
        )
    checks.run(
        "infer iris without X is refused",
        refused,
        "iris",
        make_inputs(httpclient, {"Y": iris[0]["X"]}, True),
        "400",
        ["X"],
    )
    checks.run(
        "infer unknown model is refused",
        refused,
        "no_such_model",
        make_inputs(httpclient, iris[0], True),
        "404",
        ["no_such_model"],
    )

    # The classification extension, as the client asks for it (class_count on an output).
    def classification(binary):
        inputs_ref, outputs_ref = iris
        result = client.infer(
            "iris",
            make_inputs(httpclient, inputs_ref, True),
            outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)],
        )
        got = result.as_numpy("probabilities")
        probabilities = outputs_ref["probabilities"]
        labels = ["setosa", "versicolor", "virginica"]
        expect(list(got.shape) == [probabilities.shape[0], 2], f"shape {list(got.shape)}")
        for row, top in zip(probabilities, got):
            best = sorted(range(len(row)), key=lambda i: (-row[i], i))[:2]
            for entry, index in zip(top, best):
                text = entry.decode("utf-8") if isinstance(entry, bytes) else entry
                score, position, label = text.split(":")
                expect(int(position) == index, f"{text}: expected class {index}")
                expect(label == labels[index], f"{text}: expected label {labels[index]}")
                expect(bool(within(float(score), float(row[index]))), f"{text}: score off")
        return f"top-2 of {probabilities.shape[0]} rows, e.g. {got[0][0]!r}"

    for binary in [True, False]:
        checks.run(
            f"infer iris with class_count=2 ({'binary' if binary else 'json'})",
            classification,
            binary,
        )

    # Extensions tiffin does not implement are refused with 501, never ignored.
    def not_implemented(call, words):
        try:
            call()
        except InferenceServerException as error:
            message = error.message()
            expect(error.status() == "501", f"status {error.status()}: {message}")
            for word in words:
                expect(word in message, f"message does not name {word!r}: {message}")
            return f"501: {message}"
        raise CheckFailed("the request was accepted")

    checks.run(
        "infer iris with sequence_id is 501",
        not_implemented,
        lambda: client.infer(
            "iris", make_inputs(httpclient, iris[0], True), sequence_id=7, sequence_start=True
        ),
        ["sequence"],
    )
    checks.run(
        "get_inference_statistics is 501",
        not_implemented,
        lambda: client.get_inference_statistics("iris"),
        ["statistics", "/metrics"],
    )
    checks.run(
        "get_model_repository_index is 501",
        not_implemented,
        lambda: client.get_model_repository_index(),
        ["repository"],
    )

    # The asyncio client differs on the wire: it sends Content-Type application/octet-stream even
    # for JSON bodies and advertises brotli in Accept-Encoding.
    async def async_client():
        async with aioclient.InferenceServerClient(url=args.url) as aio:
            expect(await aio.is_server_ready(), "not ready")
            for binary in [True, False]:
                inputs_ref, outputs_ref = iris
                outputs = [aioclient.InferRequestedOutput(n, binary_data=binary) for n in outputs_ref]
                result = await aio.infer("iris", make_inputs(aioclient, inputs_ref, binary), outputs=outputs)
                for name, want in outputs_ref.items():
                    compare(name, result.as_numpy(name), want)
        return "binary and json"

    checks.run("infer iris with the asyncio client", lambda: asyncio.run(async_client()))

    client.close()
    if checks.failed:
        print(f"{len(checks.failed)} of {checks.count} checks failed: {', '.join(checks.failed)}")
        return 1
    print(f"all {checks.count} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
