"""Asks a running tiffin server, through NVIDIA's Triton client, for a package's golden examples.

`cargo xtask e2e` runs it against `tiffin serve` on the host and inside containers, with the
pinned environment of requirements.txt beside it:

    python v2_golden.py 127.0.0.1:PORT MODEL path/to/package

It waits for the server and the model to be ready, sends the package's `examples/inputs.json`
with binary and with JSON tensors, and compares every output with `examples/outputs.json`: floats
within 1e-5 plus 1e-5 of the value, labels and integers exactly. The exit status is 1 on any
difference.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import tritonclient.http as httpclient

from v2_client import CheckFailed, compare, expect, load_tensor, make_inputs


def tensors(path):
    with open(path, encoding="utf-8") as f:
        return {name: load_tensor(spec) for name, spec in json.load(f).items()}


def wait_ready(client, model, seconds):
    """Polls until the server and `model` are ready; a server still loading answers 503."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.is_server_ready() and client.is_model_ready(model):
                return
        except Exception:  # noqa: BLE001 - connection refused while the server starts
            pass
        if time.monotonic() > deadline:
            raise CheckFailed(f"{model} was not ready after {seconds} s")
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="host:port of the server")
    parser.add_argument("model", help="the served model's name")
    parser.add_argument("package", help="the package folder whose examples to send")
    parser.add_argument("--ready-timeout", type=float, default=30.0)
    args = parser.parse_args()

    package = Path(args.package)
    inputs = tensors(package / "examples" / "inputs.json")
    golden = tensors(package / "examples" / "outputs.json")
    client = httpclient.InferenceServerClient(url=args.url)
    try:
        wait_ready(client, args.model, args.ready_timeout)
        for binary in [True, False]:
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in golden]
            result = client.infer(args.model, make_inputs(httpclient, inputs, binary), outputs=outputs)
            for name, want in golden.items():
                compare(name, result.as_numpy(name), want)
        metadata = client.get_model_metadata(args.model)
        expect(metadata.get("name") == args.model, f"metadata names {metadata.get('name')!r}")
    except CheckFailed as failure:
        print(f"FAIL {args.model} at {args.url}: {failure}")
        return 1
    finally:
        client.close()
    rows = next(iter(inputs.values())).shape[0]
    print(f"ok {args.model} at {args.url}: {rows} golden rows, binary and JSON tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
