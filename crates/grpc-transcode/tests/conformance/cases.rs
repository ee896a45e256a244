//! The cases, grouped by what they show. Request messages are written with `.proto` field
//! names; response bodies in the route's JSON style (lowerCamelCase unless a case says so).

use crate::{Backend, CASE, Case, Proto};
use grpc_transcode::{HeaderRules, Options};

pub fn all() -> Vec<Case> {
    [
        spec_examples(),
        paths(),
        bodies(),
        queries(),
        json(),
        errors(),
        streaming(),
        http_body(),
        update_mask(),
        headers(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn services(options: &mut Options, names: &[&str]) {
    options.services = Some(names.iter().map(|s| s.to_string()).collect());
}

/// The mappings given as examples in google/api/http.proto.
fn spec_examples() -> Vec<Case> {
    vec![
        Case {
            name: "spec: a multi-segment variable binds the resource name",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.ByName"]),
            request: "GET /v1/messages/123456",
            grpc: "/testing.messaging.ByName/GetMessage",
            sent: &[r#"{"name": "messages/123456"}"#],
            backend: ok!(r#"{"messageId": "123456", "text": "Hi!"}"#),
            response: r#"{"messageId": "123456", "text": "Hi!"}"#,
            ..CASE
        },
        Case {
            name: "spec: fields outside the path come from the query, nested ones too",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.ByQuery"]),
            request: "GET /v1/messages/123456?revision=2&sub.subfield=foo",
            grpc: "/testing.messaging.ByQuery/GetMessage",
            sent: &[r#"{"message_id": "123456", "revision": "2", "sub": {"subfield": "foo"}}"#],
            backend: ok!(r#"{"messageId": "123456"}"#),
            response: r#"{"messageId": "123456"}"#,
            ..CASE
        },
        Case {
            name: "spec: body names one field",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.BodyField"]),
            request: "PATCH /v1/messages/123456",
            body: r#"{"text": "Hi!"}"#,
            grpc: "/testing.messaging.BodyField/UpdateMessage",
            sent: &[r#"{"message_id": "123456", "message": {"text": "Hi!"}}"#],
            backend: ok!(r#"{"messageId": "123456", "text": "Hi!"}"#),
            response: r#"{"messageId": "123456", "text": "Hi!"}"#,
            ..CASE
        },
        Case {
            name: "spec: body * fills the request around the path",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.BodyStar"]),
            request: "PATCH /v1/messages/123456",
            body: r#"{"text": "Hi!"}"#,
            grpc: "/testing.messaging.BodyStar/UpdateMessage",
            sent: &[r#"{"message_id": "123456", "text": "Hi!"}"#],
            backend: ok!(r#"{"messageId": "123456", "text": "Hi!"}"#),
            response: r#"{"messageId": "123456", "text": "Hi!"}"#,
            ..CASE
        },
        Case {
            name: "spec: the main binding of a method with additional bindings",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.Bindings"]),
            request: "GET /v1/messages/123456",
            grpc: "/testing.messaging.Bindings/GetMessage",
            sent: &[r#"{"message_id": "123456"}"#],
            backend: ok!(r#"{"messageId": "123456"}"#),
            response: r#"{"messageId": "123456"}"#,
            ..CASE
        },
        Case {
            name: "spec: an additional binding",
            proto: Proto::Messaging,
            configure: |o| services(o, &["testing.messaging.Bindings"]),
            request: "GET /v1/users/me/messages/123456",
            grpc: "/testing.messaging.Bindings/GetMessage",
            sent: &[r#"{"message_id": "123456", "user_id": "me"}"#],
            backend: ok!(r#"{"messageId": "123456"}"#),
            response: r#"{"messageId": "123456"}"#,
            ..CASE
        },
    ]
}

/// Path templates: literals, variables, `*`, `**`, verbs, percent-decoding, 64-bit integers.
fn paths() -> Vec<Case> {
    vec![
        Case {
            name: "path: a template without variables",
            request: "GET /v1/shelves",
            grpc: "/testing.bookstore.Bookstore/ListShelves",
            sent: &["{}"],
            backend: ok!(r#"{"shelves": [{"id": "1", "theme": "poetry", "bookCount": 3}]}"#),
            response: r#"{"shelves": [{"id": "1", "theme": "poetry", "bookCount": 3}]}"#,
            ..CASE
        },
        Case {
            name: "path: an int64 variable beyond 2^53 survives both ways as a string",
            request: "GET /v1/shelves/9007199254740993",
            grpc: "/testing.bookstore.Bookstore/GetShelf",
            sent: &[r#"{"shelf": "9007199254740993"}"#],
            backend: ok!(r#"{"id": "9007199254740993", "theme": "maps"}"#),
            response: r#"{"id": "9007199254740993", "theme": "maps"}"#,
            ..CASE
        },
        Case {
            name: "path: a variable that does not parse as its field type is a 400",
            request: "GET /v1/shelves/abc",
            status: 400,
            response: r#"{"code": 3, "message": "path variable `shelf`: `abc` is not a valid int64", "details": []}"#,
            ..CASE
        },
        Case {
            name: "path: a multi-segment variable binds the whole resource name",
            request: "GET /v1/shelves/1/books/2",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "shelves/1/books/2"}"#],
            backend: ok!(r#"{"name": "shelves/1/books/2", "title": "Moby Dick"}"#),
            response: r#"{"name": "shelves/1/books/2", "title": "Moby Dick"}"#,
            ..CASE
        },
        Case {
            name: "path: a single-segment variable decodes %2F",
            request: "GET /v1/books/shelves%2F1%2Fbooks%2F2",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "shelves/1/books/2"}"#],
            backend: ok!(r#"{"name": "shelves/1/books/2"}"#),
            response: r#"{"name": "shelves/1/books/2"}"#,
            ..CASE
        },
        Case {
            name: "path: a multi-segment variable keeps %2F and decodes the rest",
            request: "GET /v1/shelves/1/books/a%2Fb%20c",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "shelves/1/books/a%2Fb c"}"#],
            backend: ok!(r#"{"name": "shelves/1/books/a%2Fb c"}"#),
            response: r#"{"name": "shelves/1/books/a%2Fb c"}"#,
            ..CASE
        },
        Case {
            name: "path: percent-encoded UTF-8 decodes",
            request: "GET /v1/books/%E6%9C%AC",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "\u672c"}"#],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
        Case {
            name: "path: an escape that is not UTF-8 is a 400",
            request: "GET /v1/books/%FF",
            status: 400,
            response: r#"{"code": 3, "message": "path variable `name`: `%FF` is not valid percent-encoded UTF-8", "details": []}"#,
            ..CASE
        },
        Case {
            name: "path: %2F does not split a segment when matching",
            request: "GET /v1/shelves/1%2F2",
            status: 400,
            response: r#"{"code": 3, "message": "path variable `shelf`: `1/2` is not a valid int64", "details": []}"#,
            ..CASE
        },
        Case {
            name: "path: variables nested in a sub-message",
            request: "DELETE /v1/shelves/4/books/moby",
            grpc: "/testing.bookstore.Bookstore/DeleteBook",
            sent: &[r#"{"ref": {"shelf": "4", "book": "moby"}}"#],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
        Case {
            name: "path: a custom verb after a variable",
            request: "POST /v1/shelves/1/books/2:move",
            body: r#"{"targetShelf": "5"}"#,
            grpc: "/testing.bookstore.Bookstore/MoveBook",
            sent: &[r#"{"name": "shelves/1/books/2", "target_shelf": "5"}"#],
            backend: ok!(r#"{"name": "shelves/5/books/2"}"#),
            response: r#"{"name": "shelves/5/books/2"}"#,
            ..CASE
        },
        Case {
            name: "path: a verb after a single-segment variable",
            request: "GET /v1/shelves/3:watch",
            grpc: "/testing.bookstore.Bookstore/WatchShelf",
            sent: &[r#"{"shelf": "3"}"#],
            backend: Backend::Reply {
                messages: &[],
                code: 0,
                message: "",
            },
            response_type: "application/x-ndjson",
            response: "",
            ..CASE
        },
        Case {
            name: "path: an unknown verb matches nothing",
            request: "POST /v1/shelves/1/books/2:copy",
            response_type: "",
            ..CASE
        },
        Case {
            name: "path: a colon in a segment is literal when no verb rule matches",
            request: "GET /v1/books/a:b",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "a:b"}"#],
            backend: ok!(r#"{"name": "a:b"}"#),
            response: r#"{"name": "a:b"}"#,
            ..CASE
        },
        Case {
            name: "path: ** at the end takes the rest of the path",
            request: "GET /v1/archive/2024/05/report.pdf",
            grpc: "/testing.bookstore.Bookstore/GetArchiveEntry",
            sent: &[r#"{"path": "2024/05/report.pdf"}"#],
            backend: ok!(r#"{"path": "2024/05/report.pdf", "size": "1024"}"#),
            response: r#"{"path": "2024/05/report.pdf", "size": "1024"}"#,
            ..CASE
        },
        Case {
            name: "path: ** also matches zero segments",
            request: "GET /v1/archive",
            grpc: "/testing.bookstore.Bookstore/GetArchiveEntry",
            sent: &["{}"],
            backend: ok!(r#"{"size": "0"}"#),
            response: "{}",
            ..CASE
        },
        Case {
            name: "path: a custom HTTP method",
            request: "QUERY /v1/shelves/1/books:search",
            body: r#"{"query": "whale"}"#,
            grpc: "/testing.bookstore.Bookstore/SearchBooks",
            sent: &[r#"{"shelf": "1", "query": "whale"}"#],
            backend: ok!(r#"{"books": [{"title": "Moby Dick"}]}"#),
            response: r#"{"books": [{"title": "Moby Dick"}]}"#,
            ..CASE
        },
        Case {
            name: "path: the POST binding of the same method",
            request: "POST /v1/shelves/1/books:search",
            body: r#"{"query": "whale"}"#,
            grpc: "/testing.bookstore.Bookstore/SearchBooks",
            sent: &[r#"{"shelf": "1", "query": "whale"}"#],
            backend: ok!(r#"{"books": []}"#),
            response: "{}",
            ..CASE
        },
        Case {
            name: "path: no rule for the path",
            request: "GET /v2/shelves",
            response_type: "",
            ..CASE
        },
        Case {
            name: "path: no rule for the HTTP method",
            request: "PUT /v1/shelves",
            response_type: "",
            ..CASE
        },
        Case {
            name: "path: a trailing slash leaves a single-segment variable empty and unmatched",
            request: "GET /v1/shelves/",
            response_type: "",
            ..CASE
        },
        Case {
            name: "path: services outside the route's list are not exposed",
            configure: |o| services(o, &["testing.bookstore.Bookstore"]),
            request: "GET /v1/shelves/1",
            grpc: "/testing.bookstore.Bookstore/GetShelf",
            sent: &[r#"{"shelf": "1"}"#],
            backend: ok!(r#"{"id": "1"}"#),
            response: r#"{"id": "1"}"#,
            ..CASE
        },
    ]
}

/// Where the body goes: a field, the whole message, nowhere; empty bodies.
fn bodies() -> Vec<Case> {
    vec![
        Case {
            name: "body: one field of the request, other fields from the query",
            request: "POST /v1/shelves?request_id=r-1",
            content_type: Some("application/json"),
            body: r#"{"theme": "poetry"}"#,
            grpc: "/testing.bookstore.Bookstore/CreateShelf",
            sent: &[r#"{"shelf": {"theme": "poetry"}, "request_id": "r-1"}"#],
            backend: ok!(r#"{"id": "7", "theme": "poetry"}"#),
            response: r#"{"id": "7", "theme": "poetry"}"#,
            ..CASE
        },
        Case {
            name: "body: the query cannot set the field the body carries",
            request: "POST /v1/shelves?shelf.theme=x",
            body: r#"{"theme": "poetry"}"#,
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `shelf.theme`: the field `shelf` comes from the request body", "details": []}"#,
            ..CASE
        },
        Case {
            name: "body: an empty body is an empty message",
            request: "POST /v1/shelves",
            grpc: "/testing.bookstore.Bookstore/CreateShelf",
            sent: &["{}"],
            backend: ok!(r#"{"id": "8"}"#),
            response: r#"{"id": "8"}"#,
            ..CASE
        },
        Case {
            name: "body: * with the path winning over the same field in the body",
            request: "POST /v1/shelves/1/books/2:move",
            body: r#"{"name": "shelves/9/books/9", "target_shelf": 5}"#,
            grpc: "/testing.bookstore.Bookstore/MoveBook",
            sent: &[r#"{"name": "shelves/1/books/2", "target_shelf": "5"}"#],
            backend: ok!(r#"{"name": "shelves/5/books/2"}"#),
            response: r#"{"name": "shelves/5/books/2"}"#,
            ..CASE
        },
        Case {
            name: "body: * leaves no query parameters",
            request: "POST /v1/shelves/1/books:search?query=whale",
            body: "{}",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `query`: this method takes every field not in the path from the body, so it has no query parameters", "details": []}"#,
            ..CASE
        },
        Case {
            name: "body: a rule without body ignores one, JSON or not",
            request: "DELETE /v1/shelves/3?force=true",
            body: "not even JSON",
            grpc: "/testing.bookstore.Bookstore/DeleteShelf",
            sent: &[r#"{"shelf": "3", "force": true}"#],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
        Case {
            name: "body: response_body sends one field of the response",
            request: "GET /v1/shelves/1/books/2/author",
            grpc: "/testing.bookstore.Bookstore/GetBookAuthor",
            sent: &[r#"{"name": "shelves/1/books/2"}"#],
            backend: ok!(
                r#"{"name": "shelves/1/books/2", "author": {"displayName": "Herman Melville", "bornYear": 1819}}"#
            ),
            response: r#"{"displayName": "Herman Melville", "bornYear": 1819}"#,
            ..CASE
        },
    ]
}

/// Query parameters: nesting, repetition, enums, well-known types, unknown names.
fn queries() -> Vec<Case> {
    const LIST: &str = "/testing.bookstore.Bookstore/ListBooks";
    const EMPTY: Backend = ok!("{}");
    vec![
        Case {
            name: "query: nested field paths",
            request: "GET /v1/shelves/1/books?filter.author=Melville&filter.pages.min=100",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "filter": {"author": "Melville", "pages": {"min": 100}}}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: repeated keys append to repeated fields",
            request: "GET /v1/shelves/1/books?tags=sea&tags=whale&ids=1&ids=9007199254740993",
            grpc: LIST,
            sent: &[
                r#"{"shelf": "1", "tags": ["sea", "whale"], "ids": ["1", "9007199254740993"]}"#,
            ],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: enums by name or number",
            request: "GET /v1/shelves/1/books?genre=SCIENCE&genres=2&genres=HISTORY",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "genre": "SCIENCE", "genres": ["SCIENCE", "HISTORY"]}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: an enum alias names the same number",
            request: "GET /v1/shelves/1/books?genre=NOVEL",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "genre": "FICTION"}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: Timestamp, Duration, a wrapper and a FieldMask as a comma list",
            request: "GET /v1/shelves/1/books?published_after=2024-01-02T03:04:05Z&min_read_time=90s&edition=2&read_mask=title,author.displayName",
            grpc: LIST,
            sent: &[
                r#"{"shelf": "1", "published_after": "2024-01-02T03:04:05Z", "min_read_time": "90s", "edition": 2, "read_mask": "title,author.displayName"}"#,
            ],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: a FieldMask may use .proto names too",
            request: "GET /v1/shelves/1/books?read_mask=title,author.display_name",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "read_mask": "title,author.displayName"}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: lowerCamel names are accepted",
            request: "GET /v1/shelves/1/books?pageSize=5&includeDrafts=true",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "page_size": 5, "include_drafts": true}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: uint64, bytes, double and a false bool",
            request: "GET /v1/shelves/1/books?min_isbn=18446744073709551615&cursor=AQID&max_price=9.5&include_drafts=false",
            grpc: LIST,
            sent: &[
                r#"{"shelf": "1", "min_isbn": "18446744073709551615", "cursor": "AQID", "max_price": 9.5}"#,
            ],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: + and percent escapes decode",
            request: "GET /v1/shelves/1/books?filter.author=Herman+Melville%26Co",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "filter": {"author": "Herman Melville&Co"}}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: a repeated key for a singular field keeps the last value",
            request: "GET /v1/shelves/1/books?page_size=1&page_size=2",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "page_size": 2}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: an unknown parameter is a 400 naming it",
            request: "GET /v1/shelves/1/books?colour=red",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `colour`: unknown field: `testing.bookstore.ListBooksRequest` has no field `colour`", "details": []}"#,
            ..CASE
        },
        Case {
            name: "query: unknown parameters are skipped when the route says so",
            configure: |o| o.ignore_unknown_query = true,
            request: "GET /v1/shelves/1/books?colour=red&page_size=3",
            grpc: LIST,
            sent: &[r#"{"shelf": "1", "page_size": 3}"#],
            backend: EMPTY,
            response: "{}",
            ..CASE
        },
        Case {
            name: "query: a value of the wrong type is a 400",
            request: "GET /v1/shelves/1/books?page_size=ten",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `page_size`: `ten` is not a valid int32", "details": []}"#,
            ..CASE
        },
        Case {
            name: "query: an unknown enum name is a 400",
            request: "GET /v1/shelves/1/books?genre=POETRY",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `genre`: `POETRY` is not a value of `testing.bookstore.Genre`", "details": []}"#,
            ..CASE
        },
        Case {
            name: "query: a field bound by the path cannot be set again",
            request: "GET /v1/shelves/1/books?shelf=2",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `shelf`: the field is bound by the URL path", "details": []}"#,
            ..CASE
        },
        Case {
            name: "query: a message field needs its subfields named",
            request: "GET /v1/shelves/1/books?filter=x",
            status: 400,
            response: r#"{"code": 3, "message": "query parameter `filter`: `testing.bookstore.ListBooksRequest.Filter` is a message; set its fields one by one (`field.subfield=value`)", "details": []}"#,
            ..CASE
        },
    ]
}

/// The proto3 JSON mapping on input and the per-route output options.
fn json() -> Vec<Case> {
    const CREATE: &str = "/testing.bookstore.Bookstore/CreateBook";
    const GET_SHELF: &str = "/testing.bookstore.Bookstore/GetShelf";
    vec![
        Case {
            name: "json: lowerCamel and original names, well-known types, maps and 64-bit numbers in",
            request: "POST /v1/shelves/1/books",
            body: r#"{"title": "A", "read_time": "3600s", "inPrint": true, "published": "2020-01-01T00:00:00Z",
                      "edition": 3, "labels": {"k": "v"}, "isbn": 9780000000001, "price": 12.5, "checksum": "AQID"}"#,
            grpc: CREATE,
            sent: &[
                r#"{"shelf": "1", "book": {"title": "A", "read_time": "3600s", "in_print": true, "published": "2020-01-01T00:00:00Z",
                       "edition": 3, "labels": {"k": "v"}, "isbn": "9780000000001", "price": 12.5, "checksum": "AQID"}}"#,
            ],
            backend: ok!(
                r#"{"name": "shelves/1/books/9", "isbn": "9780000000001", "readTime": "3600s", "edition": 3, "labels": {"k": "v"}}"#
            ),
            response: r#"{"name": "shelves/1/books/9", "isbn": "9780000000001", "readTime": "3600s", "edition": 3, "labels": {"k": "v"}}"#,
            ..CASE
        },
        Case {
            name: "json: enums in by number and by alias, out by their first name",
            request: "POST /v1/shelves/1/books:search",
            body: r#"{"genres": [2, "NOVEL", "FICTION"]}"#,
            grpc: "/testing.bookstore.Bookstore/SearchBooks",
            sent: &[r#"{"shelf": "1", "genres": ["SCIENCE", "FICTION", "FICTION"]}"#],
            backend: ok!(r#"{"books": [{"genre": "NOVEL"}]}"#),
            response: r#"{"books": [{"genre": "FICTION"}]}"#,
            ..CASE
        },
        Case {
            name: "json: malformed JSON is a 400 with its position",
            request: "POST /v1/shelves/1/books",
            body: r#"{"title": "A""#,
            grpc: CREATE,
            status: 400,
            response: r#"{"code": 3, "message": "the request body is not valid JSON: EOF while parsing an object at line 1 column 13", "details": []}"#,
            ..CASE
        },
        Case {
            name: "json: a value of the wrong type names the field",
            request: "POST /v1/shelves/1/books",
            body: r#"{"title": "A", "pages": "many"}"#,
            grpc: CREATE,
            status: 400,
            response: r#"{"code": 3, "message": "the request body at `book.pages`: invalid digit found in string at line 1 column 30", "details": []}"#,
            ..CASE
        },
        Case {
            name: "json: an unknown field is named",
            request: "POST /v1/shelves/1/books",
            body: r#"{"title": "A", "colour": "red"}"#,
            grpc: CREATE,
            status: 400,
            response: r#"{"code": 3, "message": "the request body at `book`: unrecognized field name 'colour' at line 1 column 23", "details": []}"#,
            ..CASE
        },
        Case {
            name: "json: an unknown top-level field with body *",
            request: "POST /v1/shelves/1/books:search",
            body: r#"{"colour": "red"}"#,
            grpc: "/testing.bookstore.Bookstore/SearchBooks",
            status: 400,
            response: r#"{"code": 3, "message": "the request body: unrecognized field name 'colour' at line 1 column 9", "details": []}"#,
            ..CASE
        },
        Case {
            name: "json: text after the JSON value is refused",
            request: "POST /v1/shelves/1/books:search",
            body: r#"{"query": "x"} {}"#,
            grpc: "/testing.bookstore.Bookstore/SearchBooks",
            status: 400,
            response: r#"{"code": 3, "message": "the request body is not valid JSON: trailing characters at line 1 column 16", "details": []}"#,
            ..CASE
        },
        Case {
            name: "json: zero values are left out by default",
            request: "GET /v1/shelves/0",
            grpc: GET_SHELF,
            sent: &["{}"],
            backend: ok!(r#"{"id": "0", "theme": "", "bookCount": 0}"#),
            response: "{}",
            ..CASE
        },
        Case {
            name: "json: zero values written when the route asks",
            configure: |o| o.print.emit_defaults = true,
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: ok!(r#"{"id": "1"}"#),
            response: r#"{"id": "1", "theme": "", "bookCount": 0}"#,
            ..CASE
        },
        Case {
            name: "json: original field names when the route asks",
            configure: |o| o.print.original_names = true,
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: ok!(r#"{"id": "1", "bookCount": 2}"#),
            response: r#"{"id": "1", "book_count": 2}"#,
            ..CASE
        },
        Case {
            name: "json: enums as numbers when the route asks",
            configure: |o| o.print.enums_as_ints = true,
            request: "GET /v1/shelves/1/books/2",
            grpc: "/testing.bookstore.Bookstore/GetBook",
            sent: &[r#"{"name": "shelves/1/books/2"}"#],
            backend: ok!(r#"{"genre": "SCIENCE"}"#),
            response: r#"{"genre": 2}"#,
            ..CASE
        },
    ]
}

/// Every error is a google.rpc.Status with the mapped HTTP status.
fn errors() -> Vec<Case> {
    const GET_SHELF: &str = "/testing.bookstore.Bookstore/GetShelf";
    // (code name, wire code, HTTP status, code in the JSON body)
    let table = [
        ("CANCELLED", 1, 499, 1),
        ("UNKNOWN", 2, 500, 2),
        ("INVALID_ARGUMENT", 3, 400, 3),
        ("DEADLINE_EXCEEDED", 4, 504, 4),
        ("NOT_FOUND", 5, 404, 5),
        ("ALREADY_EXISTS", 6, 409, 6),
        ("PERMISSION_DENIED", 7, 403, 7),
        ("RESOURCE_EXHAUSTED", 8, 429, 8),
        ("FAILED_PRECONDITION", 9, 400, 9),
        ("ABORTED", 10, 409, 10),
        ("OUT_OF_RANGE", 11, 400, 11),
        ("UNIMPLEMENTED", 12, 501, 12),
        ("INTERNAL", 13, 500, 13),
        ("UNAVAILABLE", 14, 503, 14),
        ("DATA_LOSS", 15, 500, 15),
        ("UNAUTHENTICATED", 16, 401, 16),
        ("an undefined code (99), as UNKNOWN,", 99, 500, 2),
    ];
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let mut cases: Vec<Case> = table
        .into_iter()
        .map(|(name, code, status, rendered)| Case {
            name: leak(format!("error: {name} is HTTP {status}")),
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[],
                code,
                message: "backend says no",
            },
            status,
            response: leak(format!(
                r#"{{"code": {rendered}, "message": "backend says no", "details": []}}"#
            )),
            ..CASE
        })
        .collect();
    cases.extend([
        Case {
            name: "error: grpc-message is percent-decoded",
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: fail!(5, "no shelf %E2%80%9C1%E2%80%9D 100%25"),
            status: 404,
            response: r#"{"code": 5, "message": "no shelf \u201c1\u201d 100%", "details": []}"#,
            ..CASE
        },
        Case {
            name: "error: details from grpc-status-details-bin are rendered with their type",
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Detailed {
                code: 9,
                message: "shelf is full",
                detail: (
                    "testing.bookstore.Shelf",
                    r#"{"id": "1", "bookCount": 500}"#,
                ),
            },
            status: 400,
            response: r#"{"code": 9, "message": "shelf is full", "details": [
                {"@type": "type.googleapis.com/testing.bookstore.Shelf", "id": "1", "bookCount": 500}]}"#,
            ..CASE
        },
        Case {
            name: "error: a missing grpc-status is an error, not a 200",
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::NoStatus,
            status: 500,
            response: r#"{"code": 2, "message": "the backend ended the call without a grpc-status", "details": []}"#,
            ..CASE
        },
        Case {
            name: "error: a response that does not decode is INTERNAL",
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Garbage,
            status: 500,
            response: r#"{"code": 13, "message": "the backend's response does not decode as `testing.bookstore.Shelf`: failed to decode Protobuf message: invalid varint", "details": []}"#,
            ..CASE
        },
        Case {
            name: "error: OK without a response message is an error",
            request: "GET /v1/shelves/1",
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[],
                code: 0,
                message: "",
            },
            status: 500,
            response: r#"{"code": 13, "message": "the backend ended the call with OK but sent no response message", "details": []}"#,
            ..CASE
        },
    ]);
    cases
}

/// Server streams as NDJSON or a JSON array, errors mid-stream, client streams.
fn streaming() -> Vec<Case> {
    const WATCH: &str = "/testing.bookstore.Bookstore/WatchShelf";
    const IMPORT: &str = "/testing.bookstore.Bookstore/ImportBooks";
    const TWO_BOOKS: &[&str] = &[
        r#"{"name": "shelves/1/books/1", "title": "A"}"#,
        r#"{"name": "shelves/1/books/2", "title": "B"}"#,
    ];
    fn array(o: &mut Options) {
        o.stream_as_array = true;
    }
    vec![
        Case {
            name: "stream: server messages as newline-delimited JSON",
            request: "GET /v1/shelves/1:watch?since=2024-01-01T00:00:00Z",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1", "since": "2024-01-01T00:00:00Z"}"#],
            backend: Backend::Reply {
                messages: TWO_BOOKS,
                code: 0,
                message: "",
            },
            response_type: "application/x-ndjson",
            response: "{\"name\": \"shelves/1/books/1\", \"title\": \"A\"}\n{\"name\": \"shelves/1/books/2\", \"title\": \"B\"}",
            ..CASE
        },
        Case {
            name: "stream: an error after the first message ends the stream with an error object",
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[r#"{"title": "A"}"#],
                code: 14,
                message: "backend going away",
            },
            response_type: "application/x-ndjson",
            response: "{\"title\": \"A\"}\n{\"error\": {\"code\": 14, \"message\": \"backend going away\", \"details\": []}}",
            ..CASE
        },
        Case {
            name: "stream: an error before any message is a plain error response",
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: fail!(5, "no shelf 1"),
            status: 404,
            response: r#"{"code": 5, "message": "no shelf 1", "details": []}"#,
            ..CASE
        },
        Case {
            name: "stream: a missing grpc-status after messages ends with an error object",
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::NoStatus,
            status: 500,
            response: r#"{"code": 2, "message": "the backend ended the call without a grpc-status", "details": []}"#,
            ..CASE
        },
        Case {
            name: "stream: server messages as one JSON array when the route asks",
            configure: array,
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: TWO_BOOKS,
                code: 0,
                message: "",
            },
            response: r#"[{"name": "shelves/1/books/1", "title": "A"}, {"name": "shelves/1/books/2", "title": "B"}]"#,
            ..CASE
        },
        Case {
            name: "stream: an array stream that fails midway ends with an error element",
            configure: array,
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[r#"{"title": "A"}"#],
                code: 4,
                message: "too slow",
            },
            response: r#"[{"title": "A"}, {"error": {"code": 4, "message": "too slow", "details": []}}]"#,
            ..CASE
        },
        Case {
            name: "stream: an empty array stream",
            configure: array,
            request: "GET /v1/shelves/1:watch",
            grpc: WATCH,
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[],
                code: 0,
                message: "",
            },
            response: "[]",
            ..CASE
        },
        Case {
            name: "stream: client messages from newline-delimited JSON, each with the path fields",
            request: "POST /v1/shelves/3/books:import?request_id=r-9",
            body: "{\"title\": \"A\"}\n{\"title\": \"B\", \"pages\": 12}\n",
            grpc: IMPORT,
            sent: &[
                r#"{"shelf": "3", "book": {"title": "A"}, "request_id": "r-9"}"#,
                r#"{"shelf": "3", "book": {"title": "B", "pages": 12}, "request_id": "r-9"}"#,
            ],
            backend: ok!(r#"{"imported": 2, "names": ["shelves/3/books/1", "shelves/3/books/2"]}"#),
            response: r#"{"imported": 2, "names": ["shelves/3/books/1", "shelves/3/books/2"]}"#,
            ..CASE
        },
        Case {
            name: "stream: client messages from a JSON array",
            request: "POST /v1/shelves/3/books:import",
            body: r#"[{"title": "A"}, {"title": "B"}]"#,
            grpc: IMPORT,
            sent: &[
                r#"{"shelf": "3", "book": {"title": "A"}}"#,
                r#"{"shelf": "3", "book": {"title": "B"}}"#,
            ],
            backend: ok!(r#"{"imported": 2}"#),
            response: r#"{"imported": 2}"#,
            ..CASE
        },
        Case {
            name: "stream: a bad client message is a 400 naming its position and field",
            request: "POST /v1/shelves/3/books:import",
            body: "{\"title\": \"A\"}\n{\"pages\": \"many\"}\n",
            grpc: IMPORT,
            sent: &[r#"{"shelf": "3", "book": {"title": "A"}}"#],
            status: 400,
            response: r#"{"code": 3, "message": "message 2 of the request stream at `book.pages`: invalid digit found in string", "details": []}"#,
            ..CASE
        },
        Case {
            name: "stream: a client stream cut inside a message is a 400",
            request: "POST /v1/shelves/3/books:import",
            body: "[{\"title\": \"A\"}, {\"title\"",
            grpc: IMPORT,
            sent: &[r#"{"shelf": "3", "book": {"title": "A"}}"#],
            status: 400,
            response: r#"{"code": 3, "message": "the request stream ended in the middle of a message", "details": []}"#,
            ..CASE
        },
    ]
}

/// google.api.HttpBody as raw bytes in both directions.
fn http_body() -> Vec<Case> {
    vec![
        Case {
            name: "http body: a download with its own content type",
            request: "GET /v1/shelves/1/books/2/cover",
            grpc: "/testing.bookstore.Bookstore/GetCover",
            sent: &[r#"{"name": "shelves/1/books/2"}"#],
            backend: ok!(r#"{"contentType": "image/svg+xml", "data": "PHN2Zy8+"}"#),
            response_type: "image/svg+xml",
            response: "<svg/>",
            ..CASE
        },
        Case {
            name: "http body: an upload into one field, with the path",
            request: "PUT /v1/shelves/1/books/2/cover",
            content_type: Some("image/svg+xml"),
            body: "<svg/>",
            grpc: "/testing.bookstore.Bookstore/PutCover",
            sent: &[
                r#"{"name": "shelves/1/books/2", "cover": {"content_type": "image/svg+xml", "data": "PHN2Zy8+"}}"#,
            ],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
        Case {
            name: "http body: the whole request is the upload",
            request: "POST /v1/archive:upload",
            content_type: Some("text/csv"),
            body: "a,b\n1,2\n",
            grpc: "/testing.bookstore.Bookstore/UploadArchive",
            sent: &[r#"{"content_type": "text/csv", "data": "YSxiCjEsMgo="}"#],
            backend: ok!(r#"{"path": "uploads/1.csv", "size": "8", "contentType": "text/csv"}"#),
            response: r#"{"path": "uploads/1.csv", "size": "8", "contentType": "text/csv"}"#,
            ..CASE
        },
        Case {
            name: "http body: a streamed upload sends each body chunk as a message",
            request: "POST /v1/archive:append",
            content_type: Some("text/plain"),
            body: "hello world!",
            grpc: "/testing.bookstore.Bookstore/AppendArchive",
            sent: &[
                r#"{"content_type": "text/plain", "data": "aGVsbG8="}"#,
                r#"{"content_type": "text/plain", "data": "IHdvcmw="}"#,
                r#"{"content_type": "text/plain", "data": "ZCE="}"#,
            ],
            backend: ok!(r#"{"path": "archive.txt", "size": "12"}"#),
            response: r#"{"path": "archive.txt", "size": "12"}"#,
            ..CASE
        },
        Case {
            name: "http body: a streamed download is the concatenated data",
            request: "GET /v1/shelves/1:export",
            grpc: "/testing.bookstore.Bookstore/ExportShelf",
            sent: &[r#"{"shelf": "1"}"#],
            backend: Backend::Reply {
                messages: &[
                    r#"{"contentType": "text/csv", "data": "YSxi"}"#,
                    r#"{"data": "CjEsMg=="}"#,
                ],
                code: 0,
                message: "",
            },
            response_type: "text/csv",
            response: "a,b\n1,2",
            ..CASE
        },
    ]
}

/// Request headers passed as metadata, response metadata passed back as headers.
fn headers() -> Vec<Case> {
    const GET_SHELF: &str = "/testing.bookstore.Bookstore/GetShelf";
    vec![
        Case {
            name: "headers: authorization and x-request-id pass by default, others stay",
            request: "GET /v1/shelves/1",
            headers: &[
                ("authorization", "Bearer t0k"),
                ("cookie", "session=1"),
                ("x-request-id", "req-1"),
                ("grpc-timeout", "1S"),
            ],
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            metadata: &[("authorization", "Bearer t0k"), ("x-request-id", "req-1")],
            backend: ok!(r#"{"id": "1"}"#),
            backend_metadata: &[
                ("x-served-by", "shelf-3"),
                ("content-type", "application/grpc"),
            ],
            response_headers: &[("grpc-metadata-x-served-by", "shelf-3")],
            response: r#"{"id": "1"}"#,
            ..CASE
        },
        Case {
            name: "headers: a route's own allow list replaces the default",
            configure: |o| o.headers = HeaderRules::new(["X-Tenant"]).unwrap(),
            request: "GET /v1/shelves/1",
            headers: &[("authorization", "Bearer t0k"), ("x-tenant", "acme")],
            grpc: GET_SHELF,
            sent: &[r#"{"shelf": "1"}"#],
            metadata: &[("x-tenant", "acme")],
            backend: ok!(r#"{"id": "1"}"#),
            response: r#"{"id": "1"}"#,
            ..CASE
        },
    ]
}

/// PATCH with a FieldMask named update_mask.
fn update_mask() -> Vec<Case> {
    const UPDATE: &str = "/testing.bookstore.Bookstore/UpdateBook";
    vec![
        Case {
            name: "patch: a missing update_mask lists the fields in the body",
            request: "PATCH /v1/shelves/1/books/2",
            body: r#"{"title": "New", "author": {"displayName": "X"}, "published": "2020-01-01T00:00:00Z"}"#,
            grpc: UPDATE,
            sent: &[
                r#"{"book": {"name": "shelves/1/books/2", "title": "New", "author": {"display_name": "X"}, "published": "2020-01-01T00:00:00Z"},
                       "update_mask": "author.displayName,published,title"}"#,
            ],
            backend: ok!(r#"{"name": "shelves/1/books/2", "title": "New"}"#),
            response: r#"{"name": "shelves/1/books/2", "title": "New"}"#,
            ..CASE
        },
        Case {
            name: "patch: an update_mask from the client is kept",
            request: "PATCH /v1/shelves/1/books/2?update_mask=title",
            body: r#"{"title": "New", "pages": 5}"#,
            grpc: UPDATE,
            sent: &[
                r#"{"book": {"name": "shelves/1/books/2", "title": "New", "pages": 5}, "update_mask": "title"}"#,
            ],
            backend: ok!(r#"{"title": "New"}"#),
            response: r#"{"title": "New"}"#,
            ..CASE
        },
        Case {
            name: "patch: an empty JSON object gives no mask",
            request: "PATCH /v1/shelves/1/books/2",
            body: "{}",
            grpc: UPDATE,
            sent: &[r#"{"book": {"name": "shelves/1/books/2"}}"#],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
        Case {
            name: "patch: an empty body gives no mask",
            request: "PATCH /v1/shelves/1/books/2",
            grpc: UPDATE,
            sent: &[r#"{"book": {"name": "shelves/1/books/2"}}"#],
            backend: ok!("{}"),
            response: "{}",
            ..CASE
        },
    ]
}
