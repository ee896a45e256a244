//! What a request's `content-type` says it is, read once for every stage.
//!
//! Routing (`grpc_service`), policies, the WAF and the adapters all act on one answer. A
//! media type is read as RFC 9110 8.3.1 writes it: type and subtype case-insensitive,
//! parameters after `;`; gRPC's are `application/grpc[+format]` and gRPC-Web's
//! `application/grpc-web[-text][+format]`. A gRPC request's header is rewritten to its
//! canonical form (lower case, no parameters), so later byte comparisons agree with this
//! reading. A value that starts like a gRPC type but is not one cleanly is refused: passing
//! it on as plain HTTP would skip the gRPC routes and their policies while a gRPC backend,
//! which may not check the type, still serves it.

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};

/// The gRPC family of a request, from its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `application/grpc[+format]`.
    Grpc,
    /// `application/grpc-web[-text][+format]`.
    GrpcWeb,
    /// Anything else, or no content type.
    Other,
}

/// Why a content type that starts like gRPC's was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unclear(pub &'static str);

/// The start every gRPC and gRPC-Web media type shares, compared without case.
const GRPC_PREFIX: &[u8] = b"application/grpc";

/// Reads the request's family and rewrites a gRPC content type to its canonical form.
pub fn classify(headers: &mut HeaderMap) -> Result<Family, Unclear> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let Some(first) = values.next() else {
        return Ok(Family::Other);
    };
    if values.next().is_some() {
        let any_grpc = headers
            .get_all(CONTENT_TYPE)
            .iter()
            .any(|v| looks_grpc(v.as_bytes()));
        return if any_grpc {
            Err(Unclear("more than one content-type"))
        } else {
            Ok(Family::Other)
        };
    }
    if !looks_grpc(first.as_bytes()) {
        return Ok(Family::Other);
    }
    let (family, canonical) = match canonical(first.as_bytes()) {
        Some(family) => (family, None),
        None => parse(first.as_bytes())?,
    };
    if let Some(canonical) = canonical {
        headers.insert(CONTENT_TYPE, canonical);
    }
    Ok(family)
}

/// Whether a value starts, in any case, as gRPC's media types do.
fn looks_grpc(value: &[u8]) -> bool {
    let value = value.trim_ascii_start();
    value.len() >= GRPC_PREFIX.len() && value[..GRPC_PREFIX.len()].eq_ignore_ascii_case(GRPC_PREFIX)
}

/// The family of a value gRPC clients send as it is, already canonical: nearly every
/// gRPC request's, read without the parse.
fn canonical(value: &[u8]) -> Option<Family> {
    match value {
        b"application/grpc" | b"application/grpc+proto" => Some(Family::Grpc),
        b"application/grpc-web"
        | b"application/grpc-web+proto"
        | b"application/grpc-web-text"
        | b"application/grpc-web-text+proto" => Some(Family::GrpcWeb),
        _ => None,
    }
}

/// Parses a value that starts like a gRPC type into its family and, when the value is not
/// canonical already (the common case on the hot path), its canonical value.
fn parse(value: &[u8]) -> Result<(Family, Option<HeaderValue>), Unclear> {
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(Unclear("content-type holds bytes outside visible ASCII"));
    }
    let essence_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let written = value[..essence_end].trim_ascii();
    let essence = if written.iter().any(u8::is_ascii_uppercase) {
        std::borrow::Cow::Owned(written.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(written)
    };
    let parameters = &value[essence_end..];
    if !parameters.split(|&b| b == b';').skip(1).all(parameter) {
        return Err(Unclear("content-type has a malformed parameter"));
    }
    let (base, format) = match essence.iter().position(|&b| b == b'+') {
        Some(plus) => (&essence[..plus], Some(&essence[plus + 1..])),
        None => (&essence[..], None),
    };
    let family = match base {
        b"application/grpc" => Family::Grpc,
        b"application/grpc-web" | b"application/grpc-web-text" => Family::GrpcWeb,
        _ => return Err(Unclear("content-type is not a gRPC or gRPC-Web media type")),
    };
    if format.is_some_and(|f| f.is_empty() || !f.iter().copied().all(token_byte)) {
        return Err(Unclear("content-type has a malformed gRPC message format"));
    }
    if *essence == *value {
        return Ok((family, None));
    }
    let canonical = HeaderValue::from_bytes(&essence)
        .map_err(|_| Unclear("content-type is not a valid header value"))?;
    Ok((family, Some(canonical)))
}

/// One `name=value` parameter (RFC 9110 5.6.6): a token, `=`, a token or a quoted string.
/// Empty parameters (`;;`, a trailing `;`) are allowed, as the RFC's list syntax allows.
fn parameter(text: &[u8]) -> bool {
    let text = text.trim_ascii();
    if text.is_empty() {
        return true;
    }
    let Some(eq) = text.iter().position(|&b| b == b'=') else {
        return false;
    };
    let (name, value) = (&text[..eq], &text[eq + 1..]);
    let token = |t: &[u8]| !t.is_empty() && t.iter().copied().all(token_byte);
    let quoted = |t: &[u8]| t.len() >= 2 && t[0] == b'"' && t[t.len() - 1] == b'"';
    token(name) && (token(value) || quoted(value))
}

/// `tchar` of RFC 9110 5.6.2.
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(value: &[u8]) -> (Result<Family, Unclear>, Option<HeaderValue>) {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_bytes(value).expect("valid"));
        let family = classify(&mut headers);
        (family, headers.get(CONTENT_TYPE).cloned())
    }

    #[test]
    fn canonical_values_read_as_the_parse_reads_them() {
        for value in [
            &b"application/grpc"[..],
            b"application/grpc+proto",
            b"application/grpc-web",
            b"application/grpc-web+proto",
            b"application/grpc-web-text",
            b"application/grpc-web-text+proto",
        ] {
            let family = canonical(value).expect("canonical");
            assert_eq!(parse(value), Ok((family, None)), "{value:?}");
        }
    }

    #[test]
    fn grpc_types_in_any_case_and_with_parameters_are_grpc() {
        for (value, canonical) in [
            (&b"application/grpc"[..], "application/grpc"),
            (b"Application/GRPC", "application/grpc"),
            (b"application/grpc;x=1", "application/grpc"),
            (b"application/grpc ; charset=\"utf-8\"", "application/grpc"),
            (b"APPLICATION/GRPC+PROTO", "application/grpc+proto"),
            (b"application/grpc+json", "application/grpc+json"),
        ] {
            let (family, header) = read(value);
            assert_eq!(family, Ok(Family::Grpc), "{value:?}");
            assert_eq!(header.expect("kept"), canonical, "{value:?}");
        }
    }

    #[test]
    fn grpc_web_types_keep_text_mode_and_format() {
        for (value, canonical) in [
            (&b"application/grpc-web"[..], "application/grpc-web"),
            (
                b"Application/gRPC-Web-Text+Proto",
                "application/grpc-web-text+proto",
            ),
            (
                b"application/grpc-web+proto; x=y",
                "application/grpc-web+proto",
            ),
        ] {
            let (family, header) = read(value);
            assert_eq!(family, Ok(Family::GrpcWeb), "{value:?}");
            assert_eq!(header.expect("kept"), canonical, "{value:?}");
        }
    }

    #[test]
    fn lookalikes_are_refused_not_passed_as_plain_http() {
        for value in [
            &b"application/grpc-web\xff"[..],
            b"application/grpcx",
            b"application/grpc-webx",
            b"application/grpc+",
            b"application/grpc+pro to",
            b"application/grpc;x",
            b"application/grpc; =1",
        ] {
            assert!(read(value).0.is_err(), "{value:?} must be refused");
        }
    }

    #[test]
    fn other_types_are_other_and_untouched() {
        for value in [
            &b"application/json"[..],
            b"text/plain; charset=\xe9",
            b"grpc",
        ] {
            let (family, header) = read(value);
            assert_eq!(family, Ok(Family::Other));
            assert_eq!(header.expect("kept").as_bytes(), value);
        }
        assert_eq!(classify(&mut HeaderMap::new()), Ok(Family::Other));
    }

    #[test]
    fn two_content_types_with_one_grpc_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.append(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        assert!(classify(&mut headers).is_err());
    }

    proptest! {
        /// Whatever the bytes, the answer is one of three and never slow; a gRPC answer
        /// always leaves a canonical value a byte comparison reads the same way.
        #[test]
        fn any_value_gets_one_clear_answer(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let Ok(header) = HeaderValue::from_bytes(&value) else { return Ok(()) };
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, header);
            match classify(&mut headers) {
                Ok(Family::Grpc) => {
                    let v = headers[CONTENT_TYPE].as_bytes();
                    prop_assert!(v == b"application/grpc" || v.starts_with(b"application/grpc+"));
                }
                Ok(Family::GrpcWeb) => {
                    prop_assert!(headers[CONTENT_TYPE].as_bytes().starts_with(b"application/grpc-web"));
                }
                Ok(Family::Other) => prop_assert!(!looks_grpc(&value)),
                Err(_) => prop_assert!(looks_grpc(&value)),
            }
        }

        /// Any casing and parameters of a gRPC type read as gRPC.
        #[test]
        fn casing_and_parameters_never_hide_grpc(
            upper in proptest::collection::vec(any::<bool>(), 16),
            params in proptest::collection::vec(("[a-z]{1,8}", "[a-z0-9]{1,8}"), 0..4),
        ) {
            let mut value: String = "application/grpc"
                .chars()
                .zip(upper)
                .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            for (name, v) in params {
                value.push_str(&format!("; {name}={v}"));
            }
            prop_assert_eq!(read(value.as_bytes()).0, Ok(Family::Grpc));
        }
    }
}
