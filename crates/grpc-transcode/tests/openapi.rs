//! The OpenAPI document describes the same surface the transcoder serves.

mod common;

use grpc_transcode::{Options, Transcoder};
use serde_json::json;

fn document() -> serde_json::Value {
    Transcoder::new(common::bookstore(), &Options::default())
        .unwrap()
        .openapi("Bookstore", "1.2.3")
}

#[test]
fn every_binding_is_an_operation() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["info"],
        json!({"title": "Bookstore", "version": "1.2.3"})
    );
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths
        .values()
        .flat_map(|p| p.as_object().unwrap())
        .map(|(key, value)| match key.as_str() {
            "x-additionalOperations" => value.as_object().unwrap().len(),
            _ => 1,
        })
        .sum();
    // 20 rules plus 2 additional bindings.
    assert_eq!(operations, 22);
    for (path, method, id) in [
        ("/v1/{name}:move", "post", "Bookstore_MoveBook"),
        ("/v1/books/{name}", "get", "Bookstore_GetBook_1"),
        (
            "/v1/shelves/{shelf}/books:search",
            "post",
            "Bookstore_SearchBooks_1",
        ),
        ("/v1/{book.name}", "patch", "Bookstore_UpdateBook"),
    ] {
        assert_eq!(paths[path][method]["operationId"], id, "{method} {path}");
    }
    // OpenAPI 3.1 has no field for a custom method: it goes in an extension, as 3.2's
    // `additionalOperations` would hold it.
    let search = &paths["/v1/shelves/{shelf}/books:search"];
    assert_eq!(
        search["x-additionalOperations"]["QUERY"]["operationId"],
        "Bookstore_SearchBooks"
    );
    assert!(search.get("query").is_none(), "{search}");
    assert_eq!(
        paths["/v1/archive/{path}"]["get"]["parameters"][0]["description"],
        "Matches `**`."
    );
}

#[test]
fn parameters_follow_the_binding() {
    let doc = document();
    let list = &doc["paths"]["/v1/shelves/{shelf}/books"]["get"];
    let params: Vec<(&str, &str)> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
        .collect();
    assert_eq!(params[0], ("shelf", "path"));
    assert!(params.contains(&("filter.pages.min", "query")));
    assert!(params.contains(&("publishedAfter", "query")));
    assert!(!params.iter().any(|(n, _)| *n == "filter"));
    assert_eq!(
        list["parameters"][0]["schema"],
        json!({"type": "string", "format": "int64"})
    );

    let create = &doc["paths"]["/v1/shelves/{shelf}/books"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/testing.bookstore.Book"})
    );
    let query_names: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(query_names, vec!["shelf", "requestId"]);
}

#[test]
fn schemas_use_the_json_mapping() {
    let doc = document();
    let book = &doc["components"]["schemas"]["testing.bookstore.Book"]["properties"];
    assert_eq!(book["isbn"], json!({"type": "string", "format": "uint64"}));
    assert_eq!(
        book["published"],
        json!({"type": "string", "format": "date-time"})
    );
    assert_eq!(
        book["edition"],
        json!({"oneOf": [{"type": "integer", "format": "int32"}, {"type": "null"}]})
    );
    assert_eq!(
        book["labels"],
        json!({"type": "object", "additionalProperties": {"type": "string"}})
    );
    assert_eq!(
        book["genre"],
        json!({"$ref": "#/components/schemas/testing.bookstore.Genre"})
    );
    assert_eq!(
        doc["components"]["schemas"]["testing.bookstore.Genre"]["enum"],
        json!([
            "GENRE_UNSPECIFIED",
            "FICTION",
            "NOVEL",
            "SCIENCE",
            "HISTORY"
        ])
    );
    let cover = &doc["paths"]["/v1/{name}/cover"];
    assert_eq!(
        cover["get"]["responses"]["200"]["content"]["*/*"]["schema"]["format"],
        "binary"
    );
    assert_eq!(
        cover["put"]["requestBody"]["content"]["*/*"]["schema"]["format"],
        "binary"
    );
    let watch = &doc["paths"]["/v1/shelves/{shelf}:watch"]["get"]["responses"]["200"]["content"];
    assert!(watch.get("application/x-ndjson").is_some());
    assert!(doc["components"]["schemas"]["google.rpc.Status"].is_object());
}

/// Runs the `openapi-spec-validator` Python package (the reference validator) on `doc`; fails
/// the test with its report, or naming the package when it is missing.
fn validate_with_openapi_spec_validator(name: &str, doc: &serde_json::Value) {
    let present = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output();
    match present {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            prerequisite::missing(
                prerequisite::OPENAPI_VALIDATOR,
                &format!(
                    "python3 cannot import openapi_spec_validator (pip install \
                     'openapi-spec-validator==0.9.0'): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            prerequisite::missing(
                prerequisite::OPENAPI_VALIDATOR,
                &format!("cannot run python3: {e}"),
            );
            return;
        }
    }
    let path = std::env::temp_dir().join(format!(
        "grpc-transcode-openapi-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(doc).expect("serialize the document"),
    )
    .expect("write the document");
    let checked = std::process::Command::new("python3")
        .args([
            "-m",
            "openapi_spec_validator",
            "--schema",
            "3.1",
            "--validation-errors",
            "all",
        ])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let checked = checked.expect("run openapi_spec_validator");
    assert!(
        checked.status.success(),
        "openapi-spec-validator refuses the {name} document:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn documents_with_unary_and_streaming_methods_pass_openapi_spec_validator() {
    // Unary, client- and server-streaming methods, HttpBody in and out, custom verbs.
    validate_with_openapi_spec_validator("bookstore", &document());
    // What `sekisho up` serves at /v1/openapi.json, every ashi service included.
    let ashi = common::compile(&[
        "ashi/v1/catalog.proto",
        "ashi/v1/measurement.proto",
        "ashi/v1/sizing.proto",
    ]);
    let doc = Transcoder::new(&ashi, &Options::default())
        .expect("ashi's rules load")
        .openapi("ashi", "1");
    validate_with_openapi_spec_validator("ashi", &doc);
}
