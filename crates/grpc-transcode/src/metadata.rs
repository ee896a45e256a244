//! Which HTTP headers travel to the backend as gRPC metadata, and how response metadata comes
//! back as headers. The gateway moves the headers; these rules decide which ones.

use http::HeaderName;
use http::header::InvalidHeaderName;

/// An allow list of request headers forwarded as metadata. Everything else stays at the edge,
/// so clients cannot smuggle internal metadata to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRules {
    forwarded: Vec<HeaderName>,
}

impl Default for HeaderRules {
    /// `authorization` and `x-request-id`.
    fn default() -> HeaderRules {
        HeaderRules {
            forwarded: vec![
                http::header::AUTHORIZATION,
                HeaderName::from_static("x-request-id"),
            ],
        }
    }
}

impl HeaderRules {
    /// An allow list from configured names (case does not matter).
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<HeaderRules, InvalidHeaderName> {
        let forwarded = names
            .into_iter()
            .map(|name| HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HeaderRules { forwarded })
    }

    /// True when this request header goes to the backend. Headers that gRPC itself owns
    /// (`grpc-*`, `te`, `content-type`) never pass, whatever the list says.
    pub fn forwards(&self, name: &HeaderName) -> bool {
        !reserved(name.as_str()) && self.forwarded.contains(name)
    }

    /// The HTTP header for a response metadata key: `grpc-metadata-<key>`, or `None` for keys
    /// that belong to the gRPC protocol.
    pub fn response_header(metadata_key: &str) -> Option<HeaderName> {
        let key = metadata_key.to_ascii_lowercase();
        if reserved(&key) {
            return None;
        }
        HeaderName::from_bytes(format!("grpc-metadata-{key}").as_bytes()).ok()
    }
}

fn reserved(name: &str) -> bool {
    name.starts_with("grpc-")
        || name.starts_with(':')
        || matches!(
            name,
            "te" | "content-type"
                | "content-length"
                | "connection"
                | "transfer-encoding"
                | "trailer"
                | "host"
                | "user-agent"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_headers_pass_and_grpc_headers_never() {
        let rules = HeaderRules::default();
        assert!(rules.forwards(&http::header::AUTHORIZATION));
        assert!(rules.forwards(&HeaderName::from_static("x-request-id")));
        assert!(!rules.forwards(&http::header::COOKIE));
        let custom = HeaderRules::new(["X-Tenant", "grpc-timeout"]).unwrap();
        assert!(custom.forwards(&HeaderName::from_static("x-tenant")));
        assert!(!custom.forwards(&HeaderName::from_static("grpc-timeout")));
        assert!(HeaderRules::new(["bad header"]).is_err());
    }

    #[test]
    fn response_metadata_gets_a_prefix() {
        assert_eq!(
            HeaderRules::response_header("X-Trace").unwrap().as_str(),
            "grpc-metadata-x-trace"
        );
        assert!(HeaderRules::response_header("grpc-status").is_none());
        assert!(HeaderRules::response_header("content-type").is_none());
    }
}
