//! Checks of the document: it is valid OpenAPI 3.1, it describes exactly the router's routes
//! with their error codes, its settings limits are the ones `validate` applies, and the real
//! answers of the API match what it says.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use parallax_core::backends::Backends;
use parallax_core::config::CommonArgs;
use parallax_core::model::ConversionSettings;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use super::spec;
use crate::{AppState, WebConfig};

fn doc() -> Value {
    serde_json::to_value(spec()).expect("the document serialises")
}

/// The `(path, method)` of every route under `/api` and of `/healthz`, read from the
/// router in `lib.rs` (axum cannot list a router's routes).
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../lib.rs");
    let mut routes = BTreeSet::new();
    for part in src.split(".route(").skip(1) {
        let Some(rest) = part.trim_start().strip_prefix('"') else {
            continue;
        };
        let path = &rest[..rest.find('"').expect("a closed path literal")];
        if !(path.starts_with("/api/") || path == "/healthz") {
            continue;
        }
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = part
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route(");
        let methods = &part[..end];
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let called = methods.match_indices(&format!("{m}(")).any(|(i, _)| {
                i == 0 || {
                    let before = methods.as_bytes()[i - 1];
                    !(before.is_ascii_alphanumeric() || before == b'_')
                }
            });
            if called {
                routes.insert((path.to_owned(), m.to_owned()));
            }
        }
    }
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in item.as_object().expect("a path item").keys() {
            if m != "parameters" {
                routes.insert((path.clone(), m.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_document_is_openapi_3_1_with_every_reference_resolved() {
    let text = serde_json::to_string(&spec()).unwrap();
    let parsed = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    assert!(parsed.openapi.starts_with("3.1."), "{}", parsed.openapi);
    let doc = doc();
    for part in text.split("\"$ref\":\"").skip(1) {
        let target = &part[..part.find('"').unwrap()];
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {target}"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(doc["security"], json!([{"bearer": []}, {"basic": []}, {}]));
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([{}]));
}

#[test]
fn every_route_of_the_router_is_described_and_nothing_else() {
    let routes = router_routes();
    assert!(
        routes.contains(&("/api/jobs".into(), "post".into())) && routes.len() >= 10,
        "the router's routes were not found in lib.rs: {routes:?}"
    );
    let documented = documented_routes(&doc());
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without #[utoipa::path]: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "described but not routed: {extra:?}");
}

#[test]
fn every_route_answers_every_error_code_it_can_in_the_error_shape() {
    let doc = doc();
    for (path, method) in documented_routes(&doc) {
        let op = &doc["paths"][&path][&method];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        for (status, resp) in op["responses"].as_object().unwrap() {
            assert!(
                resp["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} {status} has no description"
            );
            if status.starts_with('4') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[test]
fn the_settings_schema_has_every_setting_and_presets_match_the_table() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let props: BTreeSet<String> = schemas["ConversionSettings"]["properties"]
        .as_object()
        .expect("settings properties")
        .keys()
        .cloned()
        .collect();
    let settings: BTreeSet<String> = crate::presets::setting_names().into_iter().collect();
    assert_eq!(props, settings);
    assert!(
        schemas["ConversionSettings"]["required"].is_null(),
        "every setting has a default"
    );

    let names: Vec<&str> = crate::presets::PRESETS.iter().map(|p| p.name).collect();
    for preset in [
        &schemas["CreateJob"]["properties"]["preset"],
        &schemas["ConvertAll"]["properties"]["preset"],
        &schemas["Preset"]["properties"]["name"],
    ] {
        assert_eq!(preset["enum"], json!(names), "{preset}");
    }
    let title = |s: &str| schemas[s]["properties"]["title"]["maxLength"].as_u64();
    for s in ["CreateJob", "PatchJob", "RerenderJob", "ConvertAll"] {
        assert_eq!(
            title(s),
            Some(crate::api::request::MAX_TITLE_CHARS as u64),
            "{s}"
        );
    }
}

#[test]
fn the_settings_limits_are_the_ones_validate_applies() {
    use crate::presets::merge;
    let hevc = ConversionSettings {
        encoder: "libx265".to_owned(),
        ..ConversionSettings::default()
    };
    let accepted = |changes: Value| merge(&hevc, Some(&changes)).is_ok();
    let doc = doc();
    let props = &doc["components"]["schemas"]["ConversionSettings"]["properties"];
    for &(name, least, most) in super::SETTING_RANGES {
        assert_eq!(props[name]["minimum"].as_f64(), Some(least), "{name}");
        assert_eq!(props[name]["maximum"].as_f64(), Some(most), "{name}");
        let integer = props[name]["type"].to_string().contains("integer");
        let value = |x: f64| if integer { json!(x as i64) } else { json!(x) };
        let step = if integer { 1.0 } else { 0.01 };
        assert!(accepted(json!({ name: value(least) })), "{name} = {least}");
        assert!(accepted(json!({ name: value(most) })), "{name} = {most}");
        assert!(
            !accepted(json!({ name: value(least - step) })),
            "{name} below"
        );
        assert!(
            !accepted(json!({ name: value(most + step) })),
            "{name} above"
        );
    }
    assert_eq!(props["ema_decay"]["exclusiveMaximum"], 1);
    assert!(accepted(json!({"ema_decay": 0.0})) && accepted(json!({"ema_decay": 0.99})));
    assert!(!accepted(json!({"ema_decay": 1.0})) && !accepted(json!({"ema_decay": -0.01})));
    assert_eq!(
        (
            &props["max_output_width"]["minimum"],
            &props["max_output_width"]["multipleOf"]
        ),
        (&json!(64), &json!(2))
    );
    assert!(accepted(json!({"max_output_width": 64})));
    assert!(!accepted(json!({"max_output_width": 62})));
    assert!(!accepted(json!({"max_output_width": 65})));
    assert_eq!(props["bit_depth"]["enum"], json!([8, 10, null]));
    for bits in [json!(8), json!(10), json!(null)] {
        assert!(accepted(json!({ "bit_depth": bits })), "{bits}");
    }
    assert!(!accepted(json!({"bit_depth": 9})));
    for e in props["encoder"]["enum"].as_array().unwrap() {
        assert!(accepted(json!({ "encoder": e })), "{e}");
    }
    assert!(!accepted(json!({"encoder": "libvpx"})));
    assert_eq!(props["model"]["pattern"], super::MODEL_PATTERN);
    let pattern_ok = |m: &str| {
        (1..=64).contains(&m.len())
            && m.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    let long = "a".repeat(65);
    for m in ["depth-anything.v2_small", "A", "a b", "", long.as_str()] {
        let ok = merge(&hevc, Some(&json!({ "model": m }))).is_ok();
        assert_eq!(ok, pattern_ok(m), "{m:?}");
    }
}

/// Where `value` does not match `schema` (resolved in `doc`); undocumented object keys
/// count as a mismatch, so a response field the document misses is found.
fn mismatch(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return mismatch(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let fits = alternatives
            .iter()
            .any(|alt| mismatch(doc, alt, value, at).is_none());
        return (!fits).then(|| format!("{at}: {value} fits no alternative of {schema}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let typed = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !types.is_empty() && !typed {
        return Some(format!("{at}: {value} is not of type {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Some(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| mismatch(doc, &schema["items"], item, &format!("{at}[{i}]"))),
        Value::Object(fields) => {
            for key in schema["required"].as_array().into_iter().flatten() {
                if !fields.contains_key(key.as_str().unwrap()) {
                    return Some(format!("{at}: required {key} is missing"));
                }
            }
            fields.iter().find_map(|(k, v)| {
                let at = format!("{at}.{k}");
                match (&schema["properties"][k], &schema["additionalProperties"]) {
                    (Value::Null, Value::Object(_)) => {
                        mismatch(doc, &schema["additionalProperties"], v, &at)
                    }
                    (Value::Null, _) => Some(format!("{at} is not described")),
                    (prop, _) => mismatch(doc, prop, v, &at),
                }
            })
        }
        _ => None,
    }
}

#[tokio::test]
async fn the_answers_match_the_documented_responses() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::from_config(&CommonArgs::local(dir.path()))
        .await
        .unwrap();
    let app = crate::app(AppState::new(&backends, WebConfig::default()));
    let doc = doc();
    let call = |method: Method, uri: String, body: Value| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, created) = call(Method::POST, "/api/jobs".into(), json!({"title": "t"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["job"]["job_id"].as_str().unwrap().to_owned();
    let unknown = "00000000-0000-0000-0000-000000000000";
    let cases = [
        ("/healthz", Method::GET, "/healthz".to_owned(), json!(null)),
        (
            "/api/presets",
            Method::GET,
            "/api/presets".into(),
            json!(null),
        ),
        (
            "/api/models",
            Method::GET,
            "/api/models".into(),
            json!(null),
        ),
        (
            "/api/jobs",
            Method::POST,
            "/api/jobs".into(),
            json!({"preset": "quest", "preview": true}),
        ),
        (
            "/api/jobs",
            Method::POST,
            "/api/jobs".into(),
            json!({"preset": "nope"}),
        ),
        (
            "/api/jobs",
            Method::GET,
            "/api/jobs?state=in_progress".into(),
            json!(null),
        ),
        ("/api/jobs", Method::GET, "/api/jobs".into(), json!(null)),
        (
            "/api/jobs",
            Method::GET,
            "/api/jobs?limit=0".into(),
            json!(null),
        ),
        (
            "/api/jobs/{id}",
            Method::GET,
            format!("/api/jobs/{id}"),
            json!(null),
        ),
        (
            "/api/jobs/{id}",
            Method::PATCH,
            format!("/api/jobs/{id}"),
            json!({"title": "u"}),
        ),
        (
            "/api/jobs/{id}",
            Method::GET,
            format!("/api/jobs/{unknown}"),
            json!(null),
        ),
        (
            "/api/jobs/{id}/segments",
            Method::GET,
            format!("/api/jobs/{id}/segments"),
            json!(null),
        ),
        (
            "/api/jobs/{id}/download",
            Method::GET,
            format!("/api/jobs/{id}/download"),
            json!(null),
        ),
        (
            "/api/jobs/{id}/rerender",
            Method::POST,
            format!("/api/jobs/{id}/rerender"),
            json!({}),
        ),
        (
            "/api/jobs/{id}/convert",
            Method::POST,
            format!("/api/jobs/{id}/convert"),
            json!({}),
        ),
        (
            "/api/jobs/{id}",
            Method::DELETE,
            format!("/api/jobs/{id}"),
            json!(null),
        ),
        (
            "/api/jobs/{id}",
            Method::DELETE,
            format!("/api/jobs/{id}"),
            json!(null),
        ),
    ];
    for (path, method, uri, body) in cases {
        let (status, answer) = call(method.clone(), uri.clone(), body).await;
        let m = method.as_str().to_ascii_lowercase();
        let documented = &doc["paths"][path][&m]["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{method} {uri} answered {status}, which is not documented: {answer}"
        );
        let schema = &documented["content"]["application/json"]["schema"];
        if let Some(why) = mismatch(&doc, schema, &answer, "body") {
            panic!("{method} {uri} ({status}): {why}\n{answer}");
        }
    }
    // The served document is this one.
    let (status, served) = call(Method::GET, "/api/openapi.json".into(), json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, doc);
}
