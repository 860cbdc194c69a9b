"""The peer `cargo xtask bench server` measures tiffin's `/predict` against.

FastAPI with onnxruntime, written as the tutorials write it and run in the setup that served
best on this kind of machine (shared/notes/peers.md): uvicorn with two workers, uvloop and
httptools. It answers the body tiffin's `/predict` takes, `{"<input>": [[...], ...]}`, with
`{"<output>": [...], ...}`, so that one wrk script drives both. The handler is `async` and runs
the model on the event loop: the fastest form for a model of microseconds (a plain `def` adds
a hop to FastAPI's thread pool per request), so the comparison is with the peer at its best.

Run by the bench as `uvicorn peer_fastapi:app --workers 2 --loop uvloop --http httptools`,
with the ONNX file in the environment variable PEER_MODEL.
"""

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException, Request

session = ort.InferenceSession(os.environ["PEER_MODEL"], providers=["CPUExecutionProvider"])
input_names = [i.name for i in session.get_inputs()]
output_names = [o.name for o in session.get_outputs()]

app = FastAPI()


@app.post("/predict")
async def predict(request: Request):
    body = await request.json()
    try:
        feed = {name: np.asarray(body[name], dtype=np.float32) for name in input_names}
    except (KeyError, TypeError, ValueError) as e:
        raise HTTPException(status_code=400, detail=f"bad input: {e}") from e
    outputs = session.run(output_names, feed)
    return {name: value.tolist() for name, value in zip(output_names, outputs)}
