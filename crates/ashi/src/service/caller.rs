//! Who is calling: every call to the `ashi.v1` services names its caller in exactly one of two
//! headers that only the gateway sets, and a call that names none is refused. ashi never infers
//! trust from a missing header, so a gateway route that forgets to set one fails closed.
//!
//! [`Identify`] (a tonic interceptor on each service) derives the [`Caller`] once per call,
//! before the message is decoded, and hands it to the handler, which takes it with
//! [`Caller::from_request`] and checks every user's data it reaches with [`Caller::may_reach`].

use std::sync::Arc;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// A signed-in user: the gateway sets it from the subject of the caller's verified token
/// (`forward_claims: { sub: x-user-id }`). Such a caller reaches only that user's data.
pub const USER_HEADER: &str = "x-user-id";

/// A named service principal: the gateway sets it from a route's config (a partner route's
/// `request_headers`) and strips copies that clients send. Such a caller reaches every user's
/// data.
pub const SERVICE_HEADER: &str = "x-ashi-service";

/// Longest identity value, bytes: far above any token subject or service name, and a bound on
/// what a malformed header can make ashi carry around.
pub const MAX_IDENTITY_BYTES: usize = 256;

/// The caller of one request, from [`USER_HEADER`] or [`SERVICE_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A signed-in user, by the subject of their token.
    User(String),
    /// A service principal, by the name its gateway route (or the anonymous setting) gives it.
    Service(String),
}

impl Caller {
    /// The caller that `metadata` names. Exactly one of the two headers must be present, once,
    /// with a well-formed value (see [`check_identity`]); anything else is UNAUTHENTICATED.
    /// With no identity header at all, `anonymous_service` (the in-cluster escape hatch, off
    /// unless configured) names the caller instead; headers that are present but malformed
    /// are refused regardless.
    pub fn from_metadata(
        metadata: &MetadataMap,
        anonymous_service: Option<&str>,
    ) -> Result<Caller, Status> {
        let user = single_value(metadata, USER_HEADER)?;
        let service = single_value(metadata, SERVICE_HEADER)?;
        match (user, service) {
            (Some(user), None) => Ok(Caller::User(user.to_owned())),
            (None, Some(service)) => Ok(Caller::Service(service.to_owned())),
            (Some(_), Some(_)) => Err(refused(format!(
                "caller identity: both {USER_HEADER} and {SERVICE_HEADER} are set; a call has \
                 one caller"
            ))),
            (None, None) => match anonymous_service {
                Some(name) => {
                    tracing::debug!(
                        service = name,
                        "call without an identity treated as the anonymous service"
                    );
                    Ok(Caller::Service(name.to_owned()))
                }
                None => Err(refused(format!(
                    "no caller identity: a call needs {USER_HEADER} (a signed-in user) or \
                     {SERVICE_HEADER} (a named service), set by the gateway"
                ))),
            },
        }
    }

    /// The caller [`Identify`] established for `request`, and the message. A request that did
    /// not pass through [`Identify`] (a service mounted without it) is refused: identity is
    /// never assumed.
    pub fn from_request<T>(request: Request<T>) -> Result<(Caller, T), Status> {
        let (_, mut extensions, message) = request.into_parts();
        let Some(caller) = extensions.remove::<Caller>() else {
            tracing::error!("a call reached a handler without the Identify interceptor");
            return Err(refused(format!(
                "no caller identity: a call needs {USER_HEADER} or {SERVICE_HEADER}"
            )));
        };
        caller.record();
        Ok((caller, message))
    }

    /// Refuses (PERMISSION_DENIED) unless this caller may reach the data of `user_id`: a user
    /// only their own, a service everyone's. Handlers call it with the user a request names
    /// and again with the owner of every stored item they read, so a store query that returned
    /// the wrong row still cannot leak it.
    pub fn may_reach(&self, user_id: &str) -> Result<(), Status> {
        match self {
            Caller::Service(_) => Ok(()),
            Caller::User(me) if me == user_id => Ok(()),
            Caller::User(_) => Err(Status::permission_denied(format!(
                "the signed-in user may only reach their own data, not user {user_id}'s"
            ))),
        }
    }

    /// `user` or `service`, for spans and logs (which never carry a user's id).
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::User(_) => "user",
            Caller::Service(_) => "service",
        }
    }

    /// Notes the caller on the call's span (see `trace::rpc`): its kind, and a service's
    /// name, which is configuration rather than personal data.
    fn record(&self) {
        Context::map_current(|cx| {
            let span = cx.span();
            if !span.is_recording() {
                return;
            }
            span.set_attribute(KeyValue::new("ashi.caller.kind", self.kind()));
            if let Caller::Service(name) = self {
                span.set_attribute(KeyValue::new("ashi.caller.service", name.clone()));
            }
        });
    }
}

/// Checks an identity value (a header's, or the configured anonymous service name): 1 to
/// [`MAX_IDENTITY_BYTES`] bytes, no control characters, no surrounding whitespace. Returns what
/// is wrong, to follow the value's name in a message.
pub fn check_identity(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    if value.len() > MAX_IDENTITY_BYTES {
        return Err(format!("is longer than {MAX_IDENTITY_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    if value.trim() != value {
        return Err("has leading or trailing whitespace".into());
    }
    Ok(())
}

/// The value of header `name` if it is present once and well-formed; the raw value never
/// appears in an error, which goes back to whoever sent it.
fn single_value<'m>(metadata: &'m MetadataMap, name: &str) -> Result<Option<&'m str>, Status> {
    let mut values = metadata.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refused(format!(
            "caller identity: {name} is given more than once"
        )));
    }
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| refused(format!("caller identity: {name} is not UTF-8")))?;
    check_identity(text)
        .map_err(|problem| refused(format!("caller identity: {name} {problem}")))?;
    Ok(Some(text))
}

fn refused(message: String) -> Status {
    tracing::debug!(reason = %message, "call refused");
    Status::unauthenticated(message)
}

/// The interceptor that establishes the [`Caller`] of every call to a service it wraps, or
/// refuses the call before its message is read. Mounted on each `ashi.v1` service (not on
/// health and reflection, which probes call without an identity).
#[derive(Debug, Clone, Default)]
pub struct Identify {
    anonymous_service: Option<Arc<str>>,
}

impl Identify {
    /// An interceptor treating identity-less calls as `anonymous_service` when it is set
    /// (see [`Caller::from_metadata`]); the name must pass [`check_identity`].
    pub fn new(anonymous_service: Option<&str>) -> Self {
        Identify {
            anonymous_service: anonymous_service.map(Arc::from),
        }
    }
}

impl tonic::service::Interceptor for Identify {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = Caller::from_metadata(request.metadata(), self.anonymous_service.as_deref())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tonic::Code;
    use tonic::metadata::{Ascii, MetadataKey, MetadataValue};

    /// A header's name and raw value.
    type Header<'a> = (&'a str, &'a [u8]);

    fn metadata(headers: &[Header]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (name, value) in headers {
            let key: MetadataKey<Ascii> =
                MetadataKey::from_bytes(name.as_bytes()).expect("a valid key");
            let value: MetadataValue<Ascii> =
                MetadataValue::try_from(*value).expect("a valid value");
            map.append(key, value);
        }
        map
    }

    fn refused_with(headers: &[Header], anonymous: Option<&str>, message: &str) {
        let err = Caller::from_metadata(&metadata(headers), anonymous)
            .expect_err("the call must be refused");
        assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
        assert!(
            err.message().contains(message),
            "{:?} should contain {message:?}",
            err.message()
        );
    }

    fn identified(headers: &[Header], anonymous: Option<&str>) -> Caller {
        match Caller::from_metadata(&metadata(headers), anonymous) {
            Ok(caller) => caller,
            Err(err) => panic!("refused: {}", err.message()),
        }
    }

    #[test]
    fn one_header_names_the_caller() {
        let alice = Caller::User("alice".into());
        assert_eq!(identified(&[("x-user-id", b"alice")], None), alice);
        assert_eq!(
            identified(&[("x-ashi-service", b"partner")], None),
            Caller::Service("partner".into())
        );
        // The anonymous setting never overrides a header that is there.
        assert_eq!(identified(&[("x-user-id", b"alice")], Some("batch")), alice);
        assert_eq!(
            identified(&[("x-user-id", "ユーザー".as_bytes())], None),
            Caller::User("ユーザー".into())
        );
        // Other headers are no one's identity.
        assert_eq!(
            identified(
                &[("x-user-id", b"alice"), ("authorization", b"Bearer x")],
                None
            ),
            alice
        );
    }

    #[test]
    fn no_identity_is_refused_unless_an_anonymous_service_is_set() {
        let err =
            Caller::from_metadata(&metadata(&[("x-other", b"x")]), None).expect_err("refused");
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().starts_with("no caller identity:"));
        assert!(err.message().contains(USER_HEADER) && err.message().contains(SERVICE_HEADER));
        assert_eq!(
            identified(&[], Some("batch")),
            Caller::Service("batch".into())
        );
    }

    #[test]
    fn malformed_identities_are_refused() {
        let long = vec![b'a'; MAX_IDENTITY_BYTES + 1];
        let longest = vec![b'a'; MAX_IDENTITY_BYTES];
        assert!(Caller::from_metadata(&metadata(&[("x-user-id", &longest)]), None).is_ok());
        for anonymous in [None, Some("batch")] {
            let cases: [(&[Header], &str); 10] = [
                (
                    &[("x-user-id", b"alice"), ("x-ashi-service", b"partner")],
                    "both x-user-id and x-ashi-service",
                ),
                (
                    &[("x-user-id", b"alice"), ("x-user-id", b"alice")],
                    "x-user-id is given more than once",
                ),
                (
                    &[("x-ashi-service", b"a"), ("x-ashi-service", b"b")],
                    "x-ashi-service is given more than once",
                ),
                (&[("x-user-id", b"")], "x-user-id is empty"),
                (&[("x-ashi-service", b"")], "x-ashi-service is empty"),
                (&[("x-user-id", b"al\xffice")], "x-user-id is not UTF-8"),
                (
                    &[("x-user-id", &long)],
                    "x-user-id is longer than 256 bytes",
                ),
                (&[("x-user-id", b"al\tice")], "x-user-id contains a control"),
                (
                    // U+0085, a control character that is valid in a header as UTF-8.
                    &[("x-ashi-service", "part\u{85}ner".as_bytes())],
                    "x-ashi-service contains a control",
                ),
                (
                    &[("x-user-id", b" alice")],
                    "x-user-id has leading or trailing",
                ),
            ];
            for (headers, message) in cases {
                refused_with(headers, anonymous, message);
            }
        }
    }

    #[test]
    fn a_user_reaches_only_their_own_data_and_a_service_everyones() {
        let alice = Caller::User("alice".into());
        assert!(alice.may_reach("alice").is_ok());
        let err = alice.may_reach("bob").expect_err("denied");
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(alice.may_reach("alice ").is_err());
        assert!(alice.may_reach("").is_err());
        let partner = Caller::Service("partner".into());
        assert!(partner.may_reach("alice").is_ok() && partner.may_reach("bob").is_ok());
    }

    #[test]
    fn identify_hands_the_caller_to_the_handler() {
        use tonic::service::Interceptor as _;
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert(SERVICE_HEADER, MetadataValue::from_static("partner"));
        let request = Identify::new(None).call(request).expect("identified");
        let (caller, ()) = Caller::from_request(request).expect("a caller");
        assert_eq!(caller, Caller::Service("partner".into()));
        // A handler reached without the interceptor refuses, even with a header present.
        let mut bypassed = Request::new(());
        bypassed
            .metadata_mut()
            .insert(SERVICE_HEADER, MetadataValue::from_static("partner"));
        let err = Caller::from_request(bypassed).expect_err("refused");
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn anonymous_names_follow_the_header_rules() {
        assert!(check_identity("batch-jobs").is_ok());
        for bad in ["", " batch", "batch\n", "a\u{0}b"] {
            assert!(check_identity(bad).is_err(), "{bad:?}");
        }
        assert!(check_identity(&"a".repeat(MAX_IDENTITY_BYTES + 1)).is_err());
    }

    #[test]
    fn the_call_span_gets_the_caller_kind_and_never_a_user_id() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        use opentelemetry_sdk::error::OTelSdkResult;
        use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
        use std::sync::Mutex;
        use tonic::service::Interceptor as _;

        #[derive(Debug, Clone, Default)]
        struct Collect(Arc<Mutex<Vec<SpanData>>>);
        impl SpanExporter for Collect {
            fn export(
                &self,
                batch: Vec<SpanData>,
            ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
                if let Ok(mut spans) = self.0.lock() {
                    spans.extend(batch);
                }
                std::future::ready(Ok(()))
            }
        }

        let collected = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collected.clone())
            .build();
        let tracer = provider.tracer("test");
        for (header, value) in [(USER_HEADER, "alice"), (SERVICE_HEADER, "partner")] {
            let cx = Context::current_with_span(tracer.start("call"));
            let guard = cx.clone().attach();
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert(header, MetadataValue::from_static(value));
            let request = Identify::new(None).call(request).expect("identified");
            Caller::from_request(request).expect("a caller");
            drop(guard);
            cx.span().end();
        }
        let spans = collected.0.lock().expect("the exporter's spans");
        let attributes: Vec<Vec<(String, String)>> = spans
            .iter()
            .map(|span| {
                span.attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect()
            })
            .collect();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            attributes,
            [
                vec![pair("ashi.caller.kind", "user")],
                vec![
                    pair("ashi.caller.kind", "service"),
                    pair("ashi.caller.service", "partner")
                ],
            ]
        );
    }

    /// Header names that matter (in either case) plus bystanders, in any mix and number.
    fn header_name() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(USER_HEADER),
            Just(SERVICE_HEADER),
            Just("X-User-Id"),
            Just("X-Ashi-Service"),
            Just("x-user-ids"),
            Just("authorization"),
        ]
    }

    /// Any bytes a header value may carry (no NUL, CR, LF), often plausible ids.
    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z0-9._-]{0,8}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..300),
        ]
        .prop_filter("a value a header can carry", |v| {
            MetadataValue::<Ascii>::try_from(v.as_slice()).is_ok()
        })
    }

    /// The values sent under `name`, which header names match whatever their case.
    fn values<'a>(headers: &'a [(&str, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    proptest! {
        #[test]
        fn no_metadata_yields_a_caller_it_does_not_name(
            headers in proptest::collection::vec((header_name(), header_value()), 0..5),
            anonymous in proptest::option::of("[a-z]{1,8}"),
            user_id in "[a-z0-9._-]{0,8}",
        ) {
            let pairs: Vec<Header> =
                headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            let users = values(&headers, USER_HEADER);
            let services = values(&headers, SERVICE_HEADER);
            let result = Caller::from_metadata(&metadata(&pairs), anonymous.as_deref());
            if users.is_empty() && services.is_empty() && anonymous.is_none() {
                // Absence never grants access without the anonymous setting.
                prop_assert!(result.is_err());
            }
            match result {
                Ok(Caller::User(id)) => {
                    // Only the single x-user-id value, alone, makes a user, and that user
                    // reaches only their own id.
                    prop_assert!(services.is_empty());
                    prop_assert_eq!(users, vec![id.as_bytes()]);
                    prop_assert!(check_identity(&id).is_ok());
                    let reaches = Caller::User(id.clone()).may_reach(&user_id).is_ok();
                    prop_assert_eq!(reaches, id == user_id);
                }
                Ok(Caller::Service(name)) => {
                    prop_assert!(users.is_empty());
                    if services.is_empty() {
                        prop_assert_eq!(Some(name), anonymous);
                    } else {
                        prop_assert_eq!(services, vec![name.as_bytes()]);
                    }
                }
                Err(status) => prop_assert_eq!(status.code(), Code::Unauthenticated),
            }
        }
    }
}
