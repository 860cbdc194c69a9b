//! The web page: served to browsers only, its JSON, a hostile model card rendered harmless, the
//! security headers, `ui: false`, and signatures checked at load when a key is given.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tiffin_server::{AppState, Config};

use crate::common::{fixture, get, loaded, package, send};

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn get_html(state: &AppState, uri: &str) -> crate::common::Answer {
    send(
        state,
        Request::get(uri)
            .header(header::ACCEPT, BROWSER)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn assert_secured(answer: &crate::common::Answer) {
    let csp = answer
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn a_browser_gets_the_page_and_api_clients_keep_their_answer() {
    let state = loaded(&["churn_model"], Config::default()).await;
    let page = get_html(&state, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("/ui/app.js"), "{html}");
    assert_secured(&page);

    let api = get(&state, "/").await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.json(), serde_json::json!({"status": "alive"}));

    for asset in [
        "/ui/app.js",
        "/ui/app.css",
        "/ui/",
        "/ui/models/churn_model/1.0.0",
    ] {
        let answer = get(&state, asset).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert_secured(&answer);
    }
}

#[tokio::test]
async fn the_page_is_small() {
    let state = loaded(&["churn_model"], Config::default()).await;
    let mut total = 0;
    for asset in ["/ui/", "/ui/app.js", "/ui/app.css"] {
        total += get(&state, asset).await.body.len();
    }
    assert!(total < 100 * 1024, "the page is {total} bytes");
}

#[tokio::test]
async fn the_list_and_the_model_page_say_what_the_package_holds() {
    let state = loaded(&["churn_model", "iris"], Config::default()).await;
    let list = get(&state, "/ui/api/models").await.json();
    assert_eq!(list["ready"], true);
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["churn_model", "iris"]);
    let churn = &list["models"][0];
    assert!(churn["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(churn["signature"]["signed"], false);
    assert_eq!(churn["examples_passed"], true);

    let model = get(&state, "/ui/api/models/churn_model/1.0.0").await;
    assert_secured(&model);
    let model = model.json();
    assert_eq!(model["manifest"]["signature"]["inputs"][0]["name"], "X");
    assert_eq!(
        model["manifest"]["signature"]["outputs"][1]["class_labels"],
        serde_json::json!(["stay", "churn"])
    );
    assert_eq!(model["batch_dim"], "batch");
    let card = model["card_html"].as_str().expect("the card, rendered");
    assert!(card.contains("<h1>"), "{card}");
    let drifts = model["drifts"].as_array().expect("the golden examples");
    assert_eq!(drifts.len(), 2);
    assert!(drifts.iter().all(|d| d["passed"] == true));
    // The try-it form's example: the golden inputs as tensors.
    let x = &model["example"]["X"];
    assert_eq!(x["shape"][1], 5);
    assert!(x["data"].as_array().unwrap().len() >= 5);

    let missing = get(&state, "/ui/api/models/churn_model/9.9.9").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// The churn fixture with a model card that tries every way to run script, packed as
/// `evil_card`.
fn hostile_card_package(dir: &std::path::Path) -> std::path::PathBuf {
    card_package(
        dir,
        "evil_card",
        "# Evil\n\n<script>window.pwned = 1</script>\n\n<img src=x onerror=\"window.pwned=2\">\n\n\
         [click me](javascript:window.pwned=3)\n\n<svg onload=\"window.pwned=4\"></svg>\n\n\
         <a href=\"data:text/html,<script>alert(1)</script>\">data</a>\n",
    )
}

/// The churn fixture with `card` as its model card, packed as `name` below `dir`.
fn card_package(dir: &std::path::Path, name: &str, card: &str) -> std::path::PathBuf {
    card_package_with(dir, name, card, None)
}

/// [`card_package`], with `examples` (JSON rows) in place of churn_model's examples.json.
fn card_package_with(
    dir: &std::path::Path,
    name: &str,
    card: &str,
    examples: Option<&str>,
) -> std::path::PathBuf {
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    for file in ["model.onnx", "examples.json", "requirements.txt"] {
        std::fs::copy(fixture("churn_model").join(file), source.join(file)).unwrap();
    }
    let toml = std::fs::read_to_string(fixture("churn_model").join("tiffin.toml")).unwrap();
    std::fs::write(
        source.join("tiffin.toml"),
        toml.replace("name = \"churn_model\"", &format!("name = \"{name}\"")),
    )
    .unwrap();
    std::fs::write(source.join("MODEL_CARD.md"), card).unwrap();
    if let Some(examples) = examples {
        std::fs::write(source.join("examples.json"), examples).unwrap();
    }
    let out = dir.join("out");
    tiffin_core::pack(
        &tiffin_core::PackOptions {
            source,
            out: Some(out),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .expect("the card's package packs")
    .archive
}

#[tokio::test]
async fn a_model_card_of_max_card_bytes_is_rendered_and_a_larger_one_is_not() {
    // One paragraph per line keeps rendering linear; the card's size is what counts.
    let line = "A line of the card.\n\n";
    let mut card = "# Big\n\n".to_owned();
    card.push_str(&line.repeat(((1 << 20) - card.len()) / line.len()));
    card.push_str(&"x".repeat((1 << 20) - card.len()));
    assert_eq!(card.len(), 1 << 20);
    for (name, card) in [
        ("big_card", card.clone()),
        ("too_big_card", format!("{card}x")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let archive = card_package(dir.path(), name, &card);
        let state = AppState::new(Config::default(), vec![archive]);
        state.load().await.unwrap();
        let model: Value = get(&state, &format!("/ui/api/models/{name}/1.0.0"))
            .await
            .json();
        if card.len() == 1 << 20 {
            assert!(
                model["card_html"]
                    .as_str()
                    .unwrap()
                    .contains("<h1>Big</h1>"),
                "{}",
                model["card_note"]
            );
        } else {
            assert!(model["card_html"].is_null());
            let note = model["card_note"].as_str().unwrap();
            assert!(
                note.contains(
                    "is 1048577 bytes, more than this page renders (the bound MAX_CARD_BYTES, \
                     1048576 bytes)"
                ),
                "{note}"
            );
        }
    }
}

#[tokio::test]
async fn golden_examples_over_max_example_bytes_are_not_offered_and_the_page_says_why() {
    // The card package's examples.json is churn_model's; the big one repeats a row until the
    // stored inputs pass MAX_EXAMPLE_BYTES (1 MiB).
    let row = r#"{"tenure_months": 3.0, "monthly_charges": 63.34, "total_charges": 187.26, "contract_months": 1.0, "support_calls": 0.0}"#;
    let big = format!("[{}]", vec![row; 30_000].join(",\n"));
    for (name, examples) in [("small_examples", None), ("big_examples", Some(big))] {
        let dir = tempfile::tempdir().unwrap();
        let archive = card_package_with(dir.path(), name, "# Card\n", examples.as_deref());
        let state = AppState::new(Config::default(), vec![archive]);
        state.load().await.unwrap();
        let model: Value = get(&state, &format!("/ui/api/models/{name}/1.0.0"))
            .await
            .json();
        if examples.is_none() {
            assert!(model["example"].is_object(), "{}", model["example_note"]);
            assert!(model["example_note"].is_null());
        } else {
            assert!(model["example"].is_null());
            let note = model["example_note"].as_str().unwrap();
            assert!(
                note.contains(
                    "more than this page offers (the bound MAX_EXAMPLE_BYTES, 1048576 bytes)"
                ),
                "{note}"
            );
        }
    }
}

#[tokio::test]
async fn a_hostile_model_card_is_sent_without_anything_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let archive = hostile_card_package(dir.path());
    let state = AppState::new(Config::default(), vec![archive]);
    state.load().await.unwrap();
    let model: Value = get(&state, "/ui/api/models/evil_card/1.0.0").await.json();
    let card = model["card_html"].as_str().unwrap().to_lowercase();
    assert!(card.contains("<h1>evil</h1>"), "{card}");
    for bad in [
        "<script",
        "onerror",
        "onload",
        "javascript:",
        "data:text",
        "<svg",
    ] {
        assert!(!card.contains(bad), "`{bad}` survived: {card}");
    }
}

#[tokio::test]
async fn with_the_page_off_nothing_of_it_answers() {
    let config = Config {
        ui: false,
        ..Config::default()
    };
    let state = loaded(&["churn_model"], config).await;
    let root = get_html(&state, "/").await;
    assert_eq!(root.json(), serde_json::json!({"status": "alive"}));
    for path in ["/ui/", "/ui/app.js", "/ui/api/models"] {
        assert_eq!(
            get(&state, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

fn signer_key() -> tiffin_core::Verifier {
    tiffin_core::Verifier::Key(
        tiffin_core::PublicKey::from_pem_file(&fixture("keys").join("signer.pub.pem")).unwrap(),
    )
}

#[tokio::test]
async fn with_a_key_only_signed_packages_are_served_and_shown_verified() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("iris.tiffin");
    std::fs::copy(package("iris"), &archive).unwrap();
    let config = Config {
        verifier: Some(signer_key()),
        ..Config::default()
    };

    let unsigned = AppState::new(config.clone(), vec![archive.clone()]);
    let failures = unsigned
        .load()
        .await
        .expect_err("an unsigned package is refused");
    assert!(
        failures[0].reason.contains("not signed"),
        "{}",
        failures[0].reason
    );

    let key = tiffin_core::SigningKey::from_pem_file(&fixture("keys").join("signer.pem")).unwrap();
    tiffin_core::sign(
        &archive,
        &key,
        &tiffin_core::SignOptions::default(),
        &tiffin_core::hash::NoProgress,
    )
    .unwrap();
    let signed = AppState::new(config, vec![archive.clone()]);
    signed
        .load()
        .await
        .expect("a package signed by the key loads");
    let list = get(&signed, "/ui/api/models").await.json();
    let signature = &list["models"][0]["signature"];
    assert_eq!(signature["signed"], true);
    assert_eq!(signature["verified"], true);
    assert_eq!(signature["key_hint"].as_str().unwrap().len(), 64);

    // Without a key the server shows the bundle's claim, not verified.
    let unchecked = AppState::new(Config::default(), vec![archive]);
    unchecked.load().await.unwrap();
    let list = get(&unchecked, "/ui/api/models").await.json();
    let signature = &list["models"][0]["signature"];
    assert_eq!(signature["signed"], true);
    assert_eq!(signature["verified"], false);

    // Signed by another key: refused.
    let other = tiffin_core::Verifier::Key(
        tiffin_core::PublicKey::from_pem_file(&fixture("keys").join("other.pub.pem")).unwrap(),
    );
    let config = Config {
        verifier: Some(other),
        ..Config::default()
    };
    let archive = dir.path().join("iris.tiffin");
    let refused = AppState::new(config, vec![archive]);
    let failures = refused.load().await.expect_err("another signer is refused");
    assert!(
        failures[0].reason.contains("signature refused"),
        "{}",
        failures[0].reason
    );
}
