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
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    // 20 rules plus 2 additional bindings.
    assert_eq!(operations, 22);
    for (path, method, id) in [
        ("/v1/{name}:move", "post", "Bookstore_MoveBook"),
        ("/v1/books/{name}", "get", "Bookstore_GetBook_1"),
        (
            "/v1/shelves/{shelf}/books:search",
            "query",
            "Bookstore_SearchBooks",
        ),
        (
            "/v1/shelves/{shelf}/books:search",
            "post",
            "Bookstore_SearchBooks_1",
        ),
        ("/v1/{book.name}", "patch", "Bookstore_UpdateBook"),
    ] {
        assert_eq!(paths[path][method]["operationId"], id, "{method} {path}");
    }
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
