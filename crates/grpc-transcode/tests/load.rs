//! Loading descriptor sets: the `google.api.http` option must survive both ways of building
//! them, and every kind of bad rule must be refused at load time with a message that says where.

mod common;

use grpc_transcode::{Options, Transcoder};

fn load(source: &str) -> Result<Transcoder, String> {
    let set = common::compile_source(source)?;
    Transcoder::new(&set, &Options::default()).map_err(|e| e.to_string())
}

fn load_error(source: &str) -> String {
    match load(source) {
        Ok(_) => panic!("loaded:\n{source}"),
        Err(error) => error,
    }
}

const HEADER: &str = r#"
syntax = "proto3";
package t;
import "google/api/annotations.proto";
message Req { string name = 1; int64 id = 2; Sub sub = 3; repeated string tags = 4; }
message Sub { string leaf = 1; }
"#;

fn with_service(rpcs: &str) -> String {
    format!("{HEADER}\nservice S {{\n{rpcs}\n}}\n")
}

#[test]
fn rules_survive_the_protox_path() {
    let transcoder = Transcoder::new(common::bookstore(), &Options::default()).unwrap();
    let call = transcoder
        .resolve(&http::Method::GET, "/v1/shelves/1/books/2", None)
        .unwrap()
        .unwrap();
    assert_eq!(call.grpc_path(), "/testing.bookstore.Bookstore/GetBook");
}

#[test]
fn rules_survive_the_protoc_binary_path() {
    // Written by `protoc --include_imports -I proto -o bookstore.binpb testing/bookstore.proto`
    // and read from disk as the gateway reads a configured descriptor file.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bookstore.binpb");
    let bytes = std::fs::read(path).unwrap();
    let from_protoc = Transcoder::new(&bytes, &Options::default()).unwrap();
    let call = from_protoc
        .resolve(&http::Method::POST, "/v1/shelves/1/books/2:move", None)
        .unwrap()
        .unwrap();
    assert_eq!(call.grpc_path(), "/testing.bookstore.Bookstore/MoveBook");

    // Both paths must yield the same rules; if this fails after editing bookstore.proto,
    // regenerate the file with the command above.
    let from_protox = Transcoder::new(common::bookstore(), &Options::default()).unwrap();
    assert_eq!(
        from_protoc.openapi("t", "1"),
        from_protox.openapi("t", "1"),
        "{path} is out of date"
    );
}

#[test]
fn conflicting_templates_are_refused_naming_both_rules() {
    let error = load_error(&with_service(
        r#"
  rpc A(Req) returns (Req) { option (google.api.http) = {get: "/v1/{name=things/*}"}; }
  rpc B(Req) returns (Req) { option (google.api.http) = {get: "/v1/things/{id}"}; }
"#,
    ));
    assert_eq!(
        error,
        "test.proto: t.S.B: rule `GET /v1/things/{id}`: it matches the same requests as \
         `GET /v1/{name=things/*}` of `t.S.A`"
    );
}

#[test]
fn additional_bindings_conflict_too() {
    let error = load_error(&with_service(
        r#"
  rpc A(Req) returns (Req) {
    option (google.api.http) = {get: "/v1/a/{name}" additional_bindings {get: "/v1/a/{id}"}};
  }
"#,
    ));
    assert!(
        error.contains("rule `GET /v1/a/{id}`: it matches the same requests as `GET /v1/a/{name}`"),
        "{error}"
    );
}

#[test]
fn same_path_with_other_method_or_verb_is_fine() {
    load(&with_service(
        r#"
  rpc A(Req) returns (Req) { option (google.api.http) = {get: "/v1/a/{name}"}; }
  rpc B(Req) returns (Req) { option (google.api.http) = {post: "/v1/a/{name}" body: "*"}; }
  rpc C(Req) returns (Req) { option (google.api.http) = {get: "/v1/a/{name}:run"}; }
"#,
    ))
    .unwrap();
}

#[test]
fn bad_rules_say_which_method_and_what() {
    let cases = [
        (
            r#"get: "/v1/{nope}""#,
            "the path variable `nope` names no field: `t.Req` has no field `nope`",
        ),
        (
            r#"get: "/v1/{sub}""#,
            "the path variable `sub` names a message; it must name a scalar field",
        ),
        (
            r#"get: "/v1/{tags}""#,
            "the path variable `tags` names a repeated field `tags`",
        ),
        (
            r#"get: "/v1/{name.x}""#,
            "goes through `name`, which is not a message",
        ),
        (
            r#"post: "/v1/x" body: "missing""#,
            "`body: \"missing\"` names no field of `t.Req`",
        ),
        (
            r#"get: "/v1/x" response_body: "missing""#,
            "`response_body: \"missing\"` names no field of `t.Req`",
        ),
        (r#"get: "/v1/**/x""#, "`**` must be the last segment"),
        (r#"get: "v1/x""#, "must start with `/`"),
        (r#"body: "*""#, "the rule has no pattern"),
    ];
    for (rule, problem) in cases {
        let error = load_error(&with_service(&format!(
            "  rpc A(Req) returns (Req) {{ option (google.api.http) = {{{rule}}}; }}"
        )));
        assert!(error.starts_with("test.proto: t.S.A: "), "{error}");
        assert!(error.contains(problem), "{rule}: {error}");
    }
}

#[test]
fn a_set_without_rules_or_with_unknown_services_is_refused() {
    let set = common::compile_source(&format!(
        "{HEADER}\nservice S {{ rpc A(Req) returns (Req); }}\n"
    ))
    .unwrap();
    let error = Transcoder::new(&set, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("no method has a google.api.http rule"),
        "{error}"
    );

    let options = Options {
        services: Some(vec!["t.Missing".into()]),
        ..Options::default()
    };
    let error = Transcoder::new(common::bookstore(), &options)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "the service `t.Missing` is not in the descriptor set"
    );

    let options = Options {
        services: Some(vec!["t.S".into()]),
        ..Options::default()
    };
    let error = Transcoder::new(&set, &options).unwrap_err().to_string();
    assert_eq!(
        error,
        "test.proto: the service `t.S` has no method with a google.api.http rule"
    );

    let error = Transcoder::new(b"not a descriptor set", &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("the descriptor set does not decode"),
        "{error}"
    );
}

#[test]
fn selected_services_hide_the_others() {
    let options = Options {
        services: Some(vec!["testing.messaging.ByName".into()]),
        ..Options::default()
    };
    let transcoder = Transcoder::new(common::messaging(), &options).unwrap();
    let get = http::Method::GET;
    assert!(
        transcoder
            .resolve(&get, "/v1/messages/1", None)
            .unwrap()
            .is_some()
    );
    assert!(
        transcoder
            .resolve(&get, "/v1/users/me/messages/1", None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn selected_methods_serve_only_themselves() {
    let options = Options {
        services: Some(vec![
            "testing.messaging.ByQuery".into(),
            "testing.messaging.BodyField".into(),
        ]),
        methods: Some(vec!["testing.messaging.ByQuery/GetMessage".into()]),
        ..Options::default()
    };
    let transcoder = Transcoder::new(common::messaging(), &options).unwrap();
    let read = transcoder.resolve(&http::Method::GET, "/v1/messages/1", None);
    assert!(read.unwrap().is_some(), "the listed read is served");
    let write = transcoder.resolve(&http::Method::PATCH, "/v1/messages/1", None);
    assert!(
        write.unwrap().is_none(),
        "a method of an exposed service that is not listed is not served"
    );

    let options = Options {
        methods: Some(vec!["testing.messaging.ByQuery/Nope".into()]),
        ..Options::default()
    };
    let error = Transcoder::new(common::messaging(), &options)
        .unwrap_err()
        .to_string();
    assert!(error.contains("testing.messaging.ByQuery/Nope"), "{error}");
}
