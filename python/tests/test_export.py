"""tiffin.export and tiffin.Package against real scikit-learn models: each exported, packed with
the original model's outputs as parity evidence, verified, predicted through the package and
compared with the original model; a broken export caught by the parity gate.

Run by `cargo xtask python` with TIFFIN_BIN naming a built tiffin; no network, no GPU.
"""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tiffin

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_months"]


def table(n=400, seed=7):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, n).astype(float),
            "monthly_charges": rng.uniform(18, 120, n).round(2),
            "support_calls": rng.poisson(1.0, n).astype(float),
            "contract_months": rng.choice([1.0, 12.0, 24.0], n),
        }
    )
    logit = -1.0 - 0.04 * X.tenure_months + 0.02 * X.monthly_charges + 0.5 * X.support_calls
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def report(kind, exported):
    # The figures the closing note quotes: what each model kind's export agrees to.
    figures = {k: (v["max_abs"], v["max_rel"], v["mismatches"], v["compared"])
               for k, v in exported.parity.items()}
    print(f"PARITY {kind}: {json.dumps(figures)}")


def test_a_pipeline_on_a_dataframe_packs_with_parity_and_predicts_like_the_original(tmp_path):
    X, y = table()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    exported = tiffin.export(
        model, X, name="churn", version="1.0.0", out=tmp_path, license="MIT",
        authors=["Data Team <data@example.org>"], description="Churn from four columns",
    )
    report("pipeline(scaler, logistic regression)", exported)
    p = exported.parity["probabilities"]
    assert p["mismatches"] == 0 and p["compared"] == 16
    assert p["max_abs"] < 1e-6
    assert exported.parity["label"]["mismatches"] == 0

    package = tiffin.Package(exported.archive)
    assert package.name == "churn" and package.version == "1.0.0"
    x = package.signature["inputs"][0]
    assert x["feature_names"] == FEATURES
    assert package.signature["outputs"][1]["class_labels"] == ["0", "1"]
    assert package.manifest["framework"]["name"] == "scikit-learn"
    assert any(p.startswith("scikit-learn==") for p in package.manifest["runtime"]["python"])
    assert package.parity["source"]["name"] == "scikit-learn"
    assert package.verify().ok

    test = X.iloc[100:140]
    got = package.predict(test)
    want = model.predict_proba(test)
    assert isinstance(got["probabilities"], pd.DataFrame)
    assert list(got["probabilities"].columns) == ["0", "1"]
    np.testing.assert_allclose(got["probabilities"].to_numpy(), want, atol=1e-6, rtol=1e-6)
    assert got["label"] == [str(v) for v in model.predict(test)]


def test_a_random_forest_agrees_with_the_original(tmp_path):
    X, y = table()
    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X, y)
    exported = tiffin.export(model, X, name="forest", version="0.1.0", out=tmp_path, examples=32)
    report("random forest classifier", exported)
    assert exported.parity["probabilities"]["compared"] == 64
    got = tiffin.Package(exported.archive).predict(X.iloc[:50].to_numpy())
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X.iloc[:50]), atol=1e-6)


def test_string_classes_keep_their_names(tmp_path):
    X, y = table()
    labels = np.where(y == 1, "churn", "stay")
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), labels)
    exported = tiffin.export(model, X.to_numpy(), name="named", version="1.0.0", out=tmp_path)
    package = tiffin.Package(exported.archive)
    outputs = {o["name"]: o for o in package.signature["outputs"]}
    assert outputs["probabilities"]["class_labels"] == ["churn", "stay"]
    assert outputs["label"]["dtype"] == "string"
    got = package.predict(X.to_numpy()[:5])
    assert got["label"] == list(model.predict(X.to_numpy()[:5]))


def test_regressions_of_large_magnitude_meet_the_relative_tolerance(tmp_path):
    X, _ = table()
    y = 1000 * X.monthly_charges + 50 * X.tenure_months
    for kind, model in [("ridge", Ridge(alpha=1.0)),
                        ("random forest regressor", RandomForestRegressor(n_estimators=10, random_state=0))]:
        model.fit(X, y)
        exported = tiffin.export(model, X, name=kind.replace(" ", "_"), version="1.0.0",
                                 out=tmp_path)
        report(kind, exported)
        v = exported.parity["variable"]
        assert v["mismatches"] == 0 and v["max_rel"] < 1e-6


def test_an_onnx_file_packs_without_parity(tmp_path):
    X, y = table()
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
    first = tiffin.export(model, X.to_numpy(), name="first", version="1.0.0", out=tmp_path / "a",
                          workdir=tmp_path / "src")
    exported = tiffin.export(str(first.source / "model.onnx"), X.to_numpy(), name="from_onnx",
                             version="1.0.0", out=tmp_path / "b")
    assert exported.parity == {}
    assert tiffin.Package(exported.archive).parity is None


def test_a_broken_export_is_refused_by_the_parity_gate(tmp_path):
    # A float64 model fed float32: the outputs hang on digits float32 inputs do not have
    # (values near 1e7 whose differences in the last units matter), so the export cannot agree.
    rng = np.random.default_rng(3)
    base = 1.0e7 + rng.integers(0, 1000, (200, 2)).astype(float) + rng.random((200, 2))
    y = (base[:, 0] - base[:, 1]) * 1000.0
    model = Ridge(alpha=1e-9).fit(base, y)
    with pytest.raises(tiffin.ParityError) as refused:
        tiffin.export(model, base, name="broken", version="1.0.0", out=tmp_path)
    message = str(refused.value)
    assert "variable" in message and "FAILED" in message
    assert not (tmp_path / "broken").exists(), "nothing is written when parity fails"


def test_an_unsupported_model_names_what_is_supported(tmp_path):
    with pytest.raises(TypeError, match="scikit-learn"):
        tiffin.export(object(), np.zeros((2, 2)), name="x", version="1.0.0", out=tmp_path)


def test_a_changed_package_fails_verify_with_the_reason(tmp_path):
    X, y = table()
    model = LogisticRegression(max_iter=500).fit(X, y)
    exported = tiffin.export(model, X, name="tampered", version="1.0.0", out=tmp_path)
    expected = exported.folder / "examples" / "expected.json"
    expected.write_text(expected.read_text().replace("0.", "0.1", 1))
    report = tiffin.Package(exported.folder).verify()
    assert not report.ok
    assert any(p.get("file") == "examples/expected.json" for p in report.problems), report.problems


def test_a_lightgbm_classifier_agrees_with_the_original(tmp_path):
    from lightgbm import LGBMClassifier

    X, y = table()
    model = LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1, random_state=0).fit(X, y)
    exported = tiffin.export(model, X, name="lgbm", version="1.0.0", out=tmp_path, examples=32)
    report("LightGBM classifier", exported)
    assert exported.parity["probabilities"]["mismatches"] == 0
    package = tiffin.Package(exported.archive)
    assert package.manifest["framework"]["name"] == "lightgbm"
    assert package.signature["inputs"][0]["feature_names"] == FEATURES
    assert package.verify().ok
    test = X.iloc[200:260]
    got = package.predict(test)
    np.testing.assert_allclose(got["probabilities"].to_numpy(), model.predict_proba(test),
                               atol=1e-6, rtol=1e-6)


def test_a_lightgbm_regressor_meets_the_relative_tolerance(tmp_path):
    from lightgbm import LGBMRegressor

    X, _ = table()
    y = 1000 * X.monthly_charges + 50 * X.tenure_months
    model = LGBMRegressor(n_estimators=40, verbose=-1, random_state=0).fit(X, y)
    exported = tiffin.export(model, X, name="lgbm_reg", version="1.0.0", out=tmp_path)
    report("LightGBM regressor", exported)
    assert exported.parity["variable"]["mismatches"] == 0


def test_the_model_card_shows_the_parity_table(tmp_path):
    X, y = table()
    model = LogisticRegression(max_iter=500).fit(X, y)
    exported = tiffin.export(model, X, name="carded", version="1.0.0", out=tmp_path)
    card = (exported.folder / "model-card.md").read_text()
    assert "### Agreement with the original model" in card
    assert "| `probabilities` | 100% | 0 of 16 |" in card
    assert "scikit-learn 1." in card


def test_a_missing_exporter_is_named_with_its_install(tmp_path, monkeypatch):
    import sys

    X, y = table()
    model = LogisticRegression(max_iter=500).fit(X, y)
    # An import of a module set to None in sys.modules fails, as for an uninstalled package.
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r"needs skl2onnx: pip install skl2onnx onnx"):
        tiffin.export(model, X, name="x", version="1.0.0", out=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing is written"
