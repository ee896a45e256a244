//! REST/JSON partners calling a gRPC service through the gateway: a real tonic bookstore
//! behind a transcoding route, called with an HTTP/1.1 client.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use interop::bookstore::serve_bookstore;
use support::*;

/// The repository's `proto/` directory, where the bookstore and google/api protos live.
fn proto_root() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto").to_string()
}

async fn gateway(bookstore: SocketAddr, extra: &str) -> Running {
    start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: bookstore-rest
    match: { path_prefix: /v1/ }
    transcode:
      protos: ["@root@/testing/bookstore.proto"]
      includes: ["@root@"]
      openapi: /v1/openapi.json
@extra@
    to: bookstore
  - name: bookstore-grpc
    match: { grpc_service: testing.bookstore.Bookstore }
    to: bookstore
clusters:
  - name: bookstore
    protocol: h2c
    endpoints: [{ address: "@bookstore@" }]
"#,
        &[
            ("root", proto_root()),
            ("bookstore", bookstore.to_string()),
            ("extra", extra.to_string()),
        ],
    ))
    .await
}

async fn rest(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut conn = H1Conn::connect(addr).await;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
    conn.send(request.body(body).expect("request")).await
}

#[tokio::test]
async fn unary_calls_map_json_paths_queries_and_errors() {
    let (bookstore, _backend) = serve_bookstore().await.expect("bookstore");
    let gw = gateway(bookstore, "").await;
    let addr = gw.listener("plain");

    // body: "shelf" - the JSON body is the shelf field; int64 ids come back as strings.
    let created = rest(
        addr,
        Method::POST,
        "/v1/shelves",
        Some(r#"{"theme":"poetry"}"#),
        &[],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.json()["theme"], "poetry");
    assert_eq!(created.json()["id"], "1");
    assert_eq!(
        created.header("grpc-metadata-x-backend-call"),
        Some("CreateShelf")
    );

    // A path variable bound to an int64 field, and an allowed header passed as metadata.
    let shelf = rest(
        addr,
        Method::GET,
        "/v1/shelves/1",
        None,
        &[("authorization", "Bearer t0k")],
    )
    .await;
    assert_eq!(shelf.status, 200);
    assert_eq!(shelf.json()["theme"], "poetry");
    assert_eq!(
        shelf.header("grpc-metadata-x-seen-authorization"),
        Some("Bearer t0k")
    );

    // A nested body field and a multi-segment variable.
    let book = rest(
        addr,
        Method::POST,
        "/v1/shelves/1/books",
        Some(r#"{"title":"Odes","genre":"NOVEL","isbn":"9780000000001"}"#),
        &[],
    )
    .await;
    assert_eq!(book.status, 200, "{}", book.text());
    assert_eq!(book.json()["name"], "shelves/1/books/1");
    assert_eq!(
        book.json()["genre"],
        "FICTION",
        "an enum alias answers with its first name"
    );
    let got = rest(addr, Method::GET, "/v1/shelves/1/books/1", None, &[]).await;
    assert_eq!(got.json()["title"], "Odes");
    assert_eq!(got.json()["isbn"], "9780000000001", "uint64 as a string");

    // The backend's NOT_FOUND is a 404 with a google.rpc.Status body.
    let missing = rest(addr, Method::GET, "/v1/shelves/42", None, &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 5);
    assert!(
        missing.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("shelf 42")),
        "{}",
        missing.text()
    );

    // The gateway's own refusals name the problem.
    let unknown = rest(addr, Method::GET, "/v1/shelves/1?colour=red", None, &[]).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("colour"), "{}", unknown.text());
    let malformed = rest(
        addr,
        Method::POST,
        "/v1/shelves",
        Some(r#"{"theme": 7}"#),
        &[],
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.text().contains("theme"), "{}", malformed.text());
    // A path no google.api.http rule matches: NOT_FOUND (5), the code whose HTTP mapping is
    // the 404 it comes with (UNIMPLEMENTED would say 501).
    let nowhere = rest(addr, Method::GET, "/v1/nothing/here", None, &[]).await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.header("content-type"), Some("application/json"));
    assert_eq!(nowhere.json()["code"], 5, "{}", nowhere.text());
    let code = nowhere.json()["code"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .expect("a numeric code");
    assert_eq!(
        grpc_transcode::Code::from_i32(code).http_status().as_u16(),
        nowhere.status,
        "the body's code maps to the HTTP status it came with"
    );
    // A known path with a method no rule binds is the same answer.
    let wrong_method = rest(addr, Method::DELETE, "/v1/shelves", None, &[]).await;
    assert_eq!(wrong_method.status, 404);
    assert_eq!(wrong_method.json()["code"], 5, "{}", wrong_method.text());

    // An UNIMPLEMENTED method is a 501.
    let archive = rest(addr, Method::GET, "/v1/archive/a/b", None, &[]).await;
    assert_eq!(archive.status, 501);

    // Native gRPC callers still reach the same backend on the other route.
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    assert!(metrics.contains(r#"route="bookstore-rest""#), "{metrics}");
}

#[tokio::test]
async fn server_streams_arrive_as_ndjson_and_client_streams_are_accepted() {
    let (bookstore, _backend) = serve_bookstore().await.expect("bookstore");
    let gw = gateway(bookstore, "").await;
    let addr = gw.listener("plain");
    rest(
        addr,
        Method::POST,
        "/v1/shelves",
        Some(r#"{"theme":"maps"}"#),
        &[],
    )
    .await;

    // Client streaming: newline-delimited JSON, one message per line.
    let imported = rest(
        addr,
        Method::POST,
        "/v1/shelves/1/books:import",
        Some("{\"title\":\"Atlas\"}\n{\"title\":\"Charts\"}\n{\"title\":\"Globes\"}\n"),
        &[],
    )
    .await;
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(imported.json()["imported"], 3);

    // Server streaming: one JSON object per line, in order.
    let watched = rest(addr, Method::GET, "/v1/shelves/1:watch", None, &[]).await;
    assert_eq!(watched.status, 200);
    assert_eq!(watched.header("content-type"), Some("application/x-ndjson"));
    let titles: Vec<String> = watched
        .text()
        .lines()
        .map(|line| {
            let book: serde_json::Value =
                serde_json::from_str(line).expect("one JSON object per line");
            book["title"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(titles, ["Atlas", "Charts", "Globes"]);

    // A stream that fails before its first message is an HTTP error.
    let missing = rest(addr, Method::GET, "/v1/shelves/9:watch", None, &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 5);
}

#[tokio::test]
async fn json_arrays_and_output_options_follow_the_route() {
    let (bookstore, _backend) = serve_bookstore().await.expect("bookstore");
    let gw = gateway(
        bookstore,
        "      stream_as_array: true\n      emit_defaults: true\n      original_names: true",
    )
    .await;
    let addr = gw.listener("plain");
    let shelf = rest(
        addr,
        Method::POST,
        "/v1/shelves",
        Some(r#"{"theme":"zero"}"#),
        &[],
    )
    .await;
    assert_eq!(
        shelf.json()["book_count"],
        0,
        "zero values and .proto names: {}",
        shelf.text()
    );
    rest(
        addr,
        Method::POST,
        "/v1/shelves/1/books",
        Some(r#"{"title":"One"}"#),
        &[],
    )
    .await;
    let watched = rest(addr, Method::GET, "/v1/shelves/1:watch", None, &[]).await;
    let books: serde_json::Value = serde_json::from_str(&watched.text()).expect("one JSON array");
    assert_eq!(
        books.as_array().map(Vec::len),
        Some(1),
        "{}",
        watched.text()
    );
    assert_eq!(books[0]["in_print"], false);
}

#[tokio::test]
async fn the_route_serves_an_openapi_document_of_its_rules() {
    let (bookstore, _backend) = serve_bookstore().await.expect("bookstore");
    let gw = gateway(bookstore, "").await;
    let doc = rest(
        gw.listener("plain"),
        Method::GET,
        "/v1/openapi.json",
        None,
        &[],
    )
    .await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{doc}"
    );
    assert!(
        doc["paths"]["/v1/shelves/{shelf}"]["get"].is_object(),
        "{doc}"
    );
}

#[tokio::test]
async fn a_transcoding_route_needs_a_grpc_cluster_and_good_descriptors() {
    let dir = TempDir::new("transcode-config");
    let config = dir.write(
        "gateway.yaml",
        &fill(
            r#"
listeners: [{ name: plain, address: "127.0.0.1:0" }]
routes:
  - name: rest
    match: { path_prefix: /v1/ }
    transcode: { protos: ["@root@/testing/missing.proto"], includes: ["@root@"] }
    to: plain-http
clusters:
  - name: plain-http
    endpoints: [{ address: "127.0.0.1:9" }]
"#,
            &[("root", proto_root())],
        ),
    );
    let error = match sekisho::Gateway::start(&config).await {
        Ok(_) => panic!("a transcoding route to an HTTP/1.1 cluster must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("gateway.yaml"), "{error}");
    assert!(error.contains("h2c"), "{error}");

    // With a gRPC cluster, the missing .proto file is what is named.
    dir.write(
        "gateway.yaml",
        &std::fs::read_to_string(&config).expect("config").replace(
            "    endpoints: [{ address: \"127.0.0.1:9\" }]",
            "    protocol: h2c\n    endpoints: [{ address: \"127.0.0.1:9\" }]",
        ),
    );
    let error = match sekisho::Gateway::start(&config).await {
        Ok(_) => panic!("a transcoding route without its descriptors must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("routes[0]"), "{error}");
    assert!(error.contains("missing.proto"), "{error}");
}
