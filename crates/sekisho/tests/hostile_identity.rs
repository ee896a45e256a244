//! Hostile clients against the gateway's promise to ashi: "`x-user-id` is the subject of the
//! caller's verified token, and a client cannot forge it".
//!
//! A real ashi (in-process, SQLite in a temp dir) sits behind a real gateway configured the way
//! `sekisho up` is: app routes per service with JWT and `forward_claims`, catalog writes for
//! catalog admins only, a REST route for signed-in users (JWT and transcoding), a partner REST
//! route (IP allow list, read methods only, `x-ashi-service: partner` added), health and
//! reflection, and a site. Clients are real: tonic over h2c and TLS, gRPC-Web over HTTP/1.1
//! and HTTP/2, REST over HTTP/1.1 and HTTP/2, and raw bytes where the `http` crate would
//! refuse what an attacker sends.
//!
//! The attacker is `mallory`, with a valid token; the victim is `alice`, whose measurement
//! (with a canary device name) is seeded straight at ashi as a service. Each test makes one
//! kind of attack and asserts both that it is refused with the right status and that none of
//! alice's data is in the answer, and that the legitimate call over the same route works, so
//! no test passes because everything is broken.

mod support;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ashi::pb::catalog_service_client::CatalogServiceClient;
use ashi::pb::measurement_service_client::MeasurementServiceClient;
use ashi::pb::{
    CreateUploadRequest, FootDimensions, GetMeasurementRequest, ImportShoesCsvRequest,
    ListMeasurementsRequest, ListMeasurementsResponse, ListShoesRequest, Measurement, Shoe,
    ShoeSize, UpsertShoeRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::prost::Message;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

const ISSUER: &str = "https://id.hostile.test";
const AUDIENCE: &str = "ashi";
const KEY_ID: &str = "hostile-es256";
/// Environment variables holding the secrets of the secret-valued config (test 6).
const GATE_VAR: &str = "SEKISHO_HOSTILE_IDENTITY_GATE";
const ISSUER_VAR: &str = "SEKISHO_HOSTILE_IDENTITY_ISSUER";
/// What `/config` and logs show for a secret; a client must not be able to send it instead.
const REDACTED: &str = "<redacted>";

const LIST: &str = "/ashi.v1.MeasurementService/ListMeasurements";
const GET: &str = "/ashi.v1.MeasurementService/GetMeasurement";
const UPSERT_SHOE: &str = "/ashi.v1.CatalogService/UpsertShoe";
const IMPORT_SHOES: &str = "/ashi.v1.CatalogService/ImportShoesCsv";

/// The catalog's read methods: all a partner may call over REST.
const PARTNER_METHODS: &str = "[ashi.v1.SizingService/DiagnoseFoot, \
     ashi.v1.SizingService/RecommendSize, ashi.v1.SizingService/RecommendSizes, \
     ashi.v1.CatalogService/GetShoe, ashi.v1.CatalogService/ListShoes]";

/// A shoe in the catalog before any attack, so partner reads have something to show.
const SEEDED_SHOE: &str = "seed-runner";
const CSV_HEADER: &str = "shoe_id,brand,model,category,gender,unit_system,size_mm,\
     inner_length_mm,inner_ball_girth_mm,inner_width_mm,label_eu,label_uk,label_us";

// ---------------------------------------------------------------------------------------------
// The platform: keys, ashi, the gateway, and alice's data.
// ---------------------------------------------------------------------------------------------

/// An ES256 key: its public half as a JWKS file for the gateway, its private half for minting.
struct Keys {
    signing: EncodingKey,
    jwks: String,
}

impl Keys {
    fn generate() -> Keys {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let (x, y) = point[1..].split_at(32);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KEY_ID,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]});
        Keys {
            signing: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("PEM key"),
            jwks: jwks.to_string(),
        }
    }

    /// A token carrying exactly `claims`, signed with the key the gateway trusts.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.signing).expect("sign a token")
    }

    /// A good token of the suite's issuer for `sub` with `role`.
    fn token(&self, sub: &str, role: &str) -> String {
        self.sign(&claims(json!(sub), role))
    }
}

/// The claims of a good token: issuer, audience, an hour to live.
fn claims(sub: Value, role: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "iat": now, "exp": now + 3600})
}

/// The secrets the config names by `${env:..}`: set once per test process, before the first
/// gateway starts, with values no one can guess.
struct Secrets {
    gate: String,
    issuer: String,
}

fn secrets() -> &'static Secrets {
    static SECRETS: OnceLock<Secrets> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let nonce = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let secrets = Secrets {
            gate: format!("gate-{nonce}"),
            issuer: format!("https://idp-{nonce}.secret.test"),
        };
        // SAFETY: set once, under the OnceLock, before any gateway of this process reads them;
        // std's own environment access is locked, and nothing else in these tests reads the
        // environment from C code concurrently.
        unsafe {
            std::env::set_var(GATE_VAR, &secrets.gate);
            std::env::set_var(ISSUER_VAR, &secrets.issuer);
        }
        secrets
    })
}

/// ashi in-process on SQLite in a temp dir; stops when dropped.
struct Ashi {
    grpc: SocketAddr,
    http: SocketAddr,
    _stop: oneshot::Sender<()>,
    _data: TempDir,
}

impl Ashi {
    async fn start() -> Ashi {
        let data = TempDir::new("hostile-ashi");
        let config = ashi::Config::local(data.path());
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = ashi::serve(config, grpc, http, shutdown).await {
                panic!("ashi failed: {e}");
            }
        });
        Ashi {
            grpc: grpc_addr,
            http: http_addr,
            _stop: stop,
            _data: data,
        }
    }

    /// A channel straight to ashi, past the gateway.
    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect to ashi")
    }

    /// Registers a measurement for `user` as the service `seed`: an upload, the scan PUT to
    /// ashi's object listener, then the measurement naming it.
    async fn register(&self, user: &str, device: &str, left: f64, right: f64) -> Measurement {
        let mut measurements = MeasurementServiceClient::new(self.channel().await);
        let scan = b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n";
        let upload = measurements
            .create_upload(as_service(CreateUploadRequest {
                user_id: user.into(),
                content_type: "model/ply".into(),
                content_length: scan.len() as u64,
            }))
            .await
            .expect("the seed service may create an upload")
            .into_inner();
        let url: http::Uri = upload.upload_url.parse().expect("upload URL");
        let mut put = Request::put(url.path_and_query().expect("a path").as_str())
            .header(http::header::HOST, self.http.to_string())
            .header(http::header::CONTENT_LENGTH, scan.len());
        for (name, value) in &upload.required_headers {
            put = put.header(name.as_str(), value.as_str());
        }
        let stored = H1Conn::connect(self.http)
            .await
            .send(put.body(Full::new(Bytes::from_static(scan))).unwrap())
            .await;
        assert!(stored.status.is_success(), "scan upload: {}", stored.text());
        measurements
            .register_measurement(as_service(ashi::pb::RegisterMeasurementRequest {
                user_id: user.into(),
                left: Some(foot(left)),
                right: Some(foot(right)),
                scan_object_keys: vec![upload.object_key],
                device: device.into(),
                measured_at: None,
            }))
            .await
            .expect("the seed service may register")
            .into_inner()
    }

    /// Every shoe id in the catalog, read as a service.
    async fn shoe_ids(&self) -> Vec<String> {
        CatalogServiceClient::new(self.channel().await)
            .list_shoes(as_service(ListShoesRequest {
                page_size: 100,
                page_token: String::new(),
            }))
            .await
            .expect("the seed service may list shoes")
            .into_inner()
            .shoes
            .into_iter()
            .map(|s| s.shoe_id)
            .collect()
    }

    /// `user`'s measurements, read as a service (to see what an attack left behind).
    async fn measurements_of(&self, user: &str) -> Vec<Measurement> {
        MeasurementServiceClient::new(self.channel().await)
            .list_measurements(as_service(list(user)))
            .await
            .expect("the seed service may list")
            .into_inner()
            .measurements
    }
}

/// `message` from the service principal `seed`, straight at ashi.
fn as_service<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-ashi-service", "seed".parse().unwrap());
    request
}

fn foot(length_mm: f64) -> FootDimensions {
    FootDimensions {
        length_mm,
        width_mm: 100.0,
        ball_girth_mm: 245.0,
        instep_height_mm: 66.0,
        heel_width_mm: 66.0,
        arch_height_mm: None,
        ball_of_foot_length_mm: None,
        toe_tip_offsets_mm: vec![3.0, 0.0, 4.0, 11.0, 19.0],
        toe1_angle_deg: 15.0,
        toe5_angle_deg: 10.0,
    }
}

fn list(user: &str) -> ListMeasurementsRequest {
    ListMeasurementsRequest {
        user_id: user.into(),
        page_size: 10,
        page_token: String::new(),
    }
}

fn shoe(id: &str) -> Shoe {
    Shoe {
        shoe_id: id.into(),
        brand: "Hostile".into(),
        model: "Intruder".into(),
        category: ashi::pb::ShoeCategory::Running as i32,
        gender: ashi::pb::Gender::Men as i32,
        unit_system: ashi::pb::UnitSystem::JisMm as i32,
        sizes: vec![ShoeSize {
            size_mm: 250,
            inner_length_mm: 264.5,
            inner_ball_girth_mm: 244.5,
            inner_width_mm: 101.2,
            ..ShoeSize::default()
        }],
    }
}

fn csv_row(id: &str) -> String {
    format!("{CSV_HEADER}\n{id},Hostile,Intruder,running,men,us,250,264.5,244.5,101.2,40,6,7\n")
}

/// What differs between the gateway configs of this suite.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// The config the suite attacks.
    Standard,
    /// The partner route also lists `x-user-id` and `x-ashi-service` as metadata to pass on,
    /// as a careless operator might: `internal_headers` must still keep the client's out.
    CarelessPartner,
}

/// The files a gateway config names.
struct Files {
    jwks: String,
    descriptors: String,
    cert: CertFiles,
}

fn gateway_yaml(files: &Files, ashi: SocketAddr, site: SocketAddr, variant: Variant) -> String {
    let app_routes: String = ["MeasurementService", "SizingService", "CatalogService"]
        .iter()
        .map(|service| {
            format!(
                r#"  - name: app-{service}
    match: {{ grpc_service: ashi.v1.{service} }}
    jwt: {{ provider: users, require: {{ role: [user] }}, forward_claims: {{ sub: x-user-id }} }}
    to: ashi
"#
            )
        })
        .collect();
    let catalog_admin_routes: String = ["UpsertShoe", "ImportShoesCsv"]
        .iter()
        .map(|method| {
            format!(
                r#"  - name: catalog-admin-{method}
    match: {{ grpc_service: ashi.v1.CatalogService, grpc_method: {method} }}
    jwt: {{ provider: users, require: {{ role: [catalog-admin] }}, forward_claims: {{ sub: x-user-id }} }}
    to: ashi
"#
            )
        })
        .collect();
    let partner_headers = match variant {
        Variant::Standard => "",
        Variant::CarelessPartner => "headers: [x-request-id, x-user-id, x-ashi-service]",
    };
    fill(
        r#"
access_log: { enabled: false }
internal_headers: [x-user-id, x-ashi-service]
listeners:
  - name: plain
    address: 127.0.0.1:0
  - name: tls
    address: 127.0.0.1:0
    tls: { certificates: [{ cert: "@cert@", key: "@key@" }] }
jwt_providers:
  - name: users
    issuer: "@issuer@"
    audiences: [ashi]
    algorithms: [ES256]
    keys: { jwks_file: "@jwks@" }
  - name: secret-idp
    issuer: "${env:@issuer_var@}"
    audiences: [ashi]
    algorithms: [ES256]
    keys: { jwks_file: "@jwks@" }
routes:
  # Catalog writes: catalog admins only, ahead of the app route of CatalogService.
@catalog_admin_routes@
  # Users of a second identity provider whose issuer is a secret.
  - name: app-secret-idp
    match:
      grpc_service: ashi.v1.MeasurementService
      headers: [{ name: x-idp, exact: secret-idp }]
    jwt: { provider: secret-idp, require: { role: [user] }, forward_claims: { sub: x-user-id } }
    to: ashi
@app_routes@
  # An operator's back door with a shared secret: every user's data, no token.
  - name: ops-gated
    match:
      path_prefix: /v1/users/
      headers: [{ name: x-gate, exact: "${env:@gate_var@}" }]
    transcode: { descriptors: "@descriptors@", services: [ashi.v1.MeasurementService] }
    request_headers: { add: { x-ashi-service: ops } }
    to: ashi

  # Signed-in users over REST.
  - name: users-rest
    match: { path_prefix: /v1/users/ }
    jwt: { provider: users, require: { role: [user] }, forward_claims: { sub: x-user-id } }
    transcode: { descriptors: "@descriptors@", services: [ashi.v1.MeasurementService] }
    to: ashi

  # Partner servers over REST, from listed addresses, read methods only.
  - name: partner-rest
    match: { path_prefix: /v1/ }
    ip_acl: { allow: [127.0.0.1/32] }
    transcode:
      descriptors: "@descriptors@"
      services: [ashi.v1.SizingService, ashi.v1.CatalogService]
      methods: @partner_methods@
      @partner_headers@
    request_headers: { add: { x-ashi-service: partner } }
    to: ashi

  - name: grpc-tools
    match: { path_regex: "^/grpc\\.(reflection\\.v1(alpha)?\\.ServerReflection|health\\.v1\\.Health)/[^/]+$" }
    to: ashi

  - name: site
    match: { path_prefix: / }
    to: site
clusters:
  - name: ashi
    protocol: h2c
    endpoints: [{ address: "@ashi@" }]
  - name: site
    endpoints: [{ address: "@site@" }]
"#,
        &[
            ("cert", files.cert.cert.display().to_string()),
            ("key", files.cert.key.display().to_string()),
            ("issuer", ISSUER.to_owned()),
            ("issuer_var", ISSUER_VAR.to_owned()),
            ("gate_var", GATE_VAR.to_owned()),
            ("jwks", files.jwks.clone()),
            ("descriptors", files.descriptors.clone()),
            ("catalog_admin_routes", catalog_admin_routes),
            ("app_routes", app_routes),
            ("partner_methods", PARTNER_METHODS.to_owned()),
            ("partner_headers", partner_headers.to_owned()),
            ("ashi", ashi.to_string()),
            ("site", site.to_string()),
        ],
    )
}

/// The whole system under attack.
struct Platform {
    gateway: Running,
    ashi: Ashi,
    keys: Keys,
    /// The certificate of the TLS listener (for "localhost").
    ca: String,
    /// alice's measurement, and the canary device name only it carries.
    alice: Measurement,
    _site: interop::ServerHandle,
}

impl Platform {
    async fn start() -> Platform {
        Platform::try_start_variant(Variant::Standard)
            .await
            .unwrap_or_else(|e| panic!("the gateway refused the suite's config: {e}"))
    }

    /// Starts the system with the gateway config `variant`, or tells why the gateway refused it.
    async fn try_start_variant(variant: Variant) -> Result<Platform, String> {
        secrets();
        let keys = Keys::generate();
        let ashi = Ashi::start().await;
        let (site, site_handle) = http_backend("site").await;
        let alice = ashi
            .register("alice", "alice-canary-phone", 251.0, 254.0)
            .await;
        CatalogServiceClient::new(ashi.channel().await)
            .import_shoes_csv(as_service(ImportShoesCsvRequest {
                csv: csv_row(SEEDED_SHOE),
            }))
            .await
            .expect("seed the catalog");

        let dir = TempDir::new("hostile-gw");
        let files = gateway_files(&dir, &keys);
        let yaml = gateway_yaml(&files, ashi.grpc, site, variant);
        let config = dir.write("gateway.yaml", &yaml);
        let gateway = sekisho::Gateway::start(&config)
            .await
            .map_err(|e| format!("{e}\nconfig:\n{yaml}"))?;
        Ok(Platform {
            gateway: Running {
                gateway,
                dir,
                config,
            },
            ashi,
            keys,
            ca: files.cert.cert_pem,
            alice,
            _site: site_handle,
        })
    }

    fn plain(&self) -> SocketAddr {
        self.gateway.listener("plain")
    }

    fn tls(&self) -> SocketAddr {
        self.gateway.listener("tls")
    }

    /// Fails when anything of alice's measurement is in `body`.
    fn assert_no_alice_data(&self, body: &[u8], what: &str) {
        for secret in [&self.alice.measurement_id, &self.alice.device] {
            assert!(
                !contains(body, secret.as_bytes()),
                "{what}: alice's data ({secret}) in the answer: {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    // --- Clients ---------------------------------------------------------------------------

    /// A tonic channel to the gateway over h2c or TLS.
    async fn channel(&self, tls: bool) -> Channel {
        if !tls {
            return Endpoint::from_shared(format!("http://{}", self.plain()))
                .unwrap()
                .connect()
                .await
                .expect("gRPC to the gateway");
        }
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        Endpoint::from_shared(format!("https://{}", self.tls()))
            .unwrap()
            .tls_config(config)
            .unwrap()
            .connect()
            .await
            .expect("gRPC over TLS to the gateway")
    }

    async fn measurements(&self, tls: bool) -> MeasurementServiceClient<Channel> {
        MeasurementServiceClient::new(self.channel(tls).await)
    }

    /// Sends `request` on a fresh connection of `wire`; the request names its path only.
    async fn exchange(&self, wire: Wire, mut request: Request<Full<Bytes>>) -> Reply {
        let path = request.uri().path_and_query().unwrap().as_str().to_owned();
        let (addr, authority) = match wire {
            Wire::H1 | Wire::H2 => (self.plain(), self.plain().to_string()),
            Wire::H1Tls | Wire::H2Tls => (self.tls(), format!("localhost:{}", self.tls().port())),
        };
        match wire {
            Wire::H1 | Wire::H1Tls => {
                request.headers_mut().insert(
                    http::header::HOST,
                    HeaderValue::from_str(&authority).unwrap(),
                );
            }
            Wire::H2 | Wire::H2Tls => {
                let scheme = if wire == Wire::H2 { "http" } else { "https" };
                *request.uri_mut() = format!("{scheme}://{authority}{path}").parse().unwrap();
                *request.version_mut() = Version::HTTP_2;
            }
        }
        let alpn: &[u8] = if wire == Wire::H1Tls {
            b"http/1.1"
        } else {
            b"h2"
        };
        let sent = match wire {
            Wire::H1 => send_h1(TcpStream::connect(addr).await.unwrap(), request).await,
            Wire::H2 => send_h2(TcpStream::connect(addr).await.unwrap(), request).await,
            Wire::H1Tls | Wire::H2Tls => {
                let tls = tls_connect(addr, "localhost", tls_config(&[&self.ca], &[alpn]))
                    .await
                    .expect("TLS handshake");
                if wire == Wire::H1Tls {
                    send_h1(tls, request).await
                } else {
                    send_h2(tls, request).await
                }
            }
        };
        sent.unwrap_or_else(|e| panic!("{wire:?} {path}: the exchange failed: {e}"))
    }

    /// A binary gRPC-Web call, with `token` as a bearer token and `extra` headers (raw bytes;
    /// a `content-type` among them replaces the usual one).
    async fn web(
        &self,
        wire: Wire,
        path: &str,
        message: &impl Message,
        token: Option<&str>,
        extra: &[(&str, &[u8])],
    ) -> Reply {
        let mut headers = HeaderMap::new();
        let web = HeaderValue::from_static("application/grpc-web+proto");
        headers.insert(http::header::CONTENT_TYPE, web.clone());
        headers.insert(http::header::ACCEPT, web);
        headers.insert("x-grpc-web", HeaderValue::from_static("1"));
        self.call(
            wire,
            Method::POST,
            path,
            headers,
            token,
            extra,
            grpc_frame(message),
        )
        .await
    }

    /// A gRPC call at the HTTP/2 level (`wire` H2 or H2Tls) with the content type given.
    async fn grpc_raw(
        &self,
        wire: Wire,
        path: &str,
        content_type: &[u8],
        message: &impl Message,
        token: Option<&str>,
    ) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        let extra: [(&str, &[u8]); 1] = [("content-type", content_type)];
        self.call(
            wire,
            Method::POST,
            path,
            headers,
            token,
            &extra,
            grpc_frame(message),
        )
        .await
    }

    /// A REST call; `body` goes as JSON.
    async fn rest(
        &self,
        wire: Wire,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &[u8])],
        body: Option<Value>,
    ) -> Reply {
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(json) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        self.call(wire, method, path, headers, token, extra, body)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        wire: Wire,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        token: Option<&str>,
        extra: &[(&str, &[u8])],
        body: Bytes,
    ) -> Reply {
        if let Some(token) = token {
            headers.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        for (name, value) in extra {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            let value = HeaderValue::from_bytes(value).expect("header value");
            if name == http::header::CONTENT_TYPE {
                headers.insert(name, value);
            } else {
                headers.append(name, value);
            }
        }
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body))
            .unwrap();
        *request.headers_mut() = headers;
        self.exchange(wire, request).await
    }
}

/// Writes the JWKS, the descriptor set and the TLS certificate a gateway config names.
fn gateway_files(dir: &TempDir, keys: &Keys) -> Files {
    let jwks = dir.write("jwks.json", &keys.jwks);
    let descriptors = dir.path().join("ashi.binpb");
    std::fs::write(&descriptors, ashi::FILE_DESCRIPTOR_SET).expect("write descriptors");
    Files {
        jwks: jwks.display().to_string(),
        descriptors: descriptors.display().to_string(),
        cert: write_cert(dir, "edge", &["localhost"]),
    }
}

/// How a client reaches the gateway.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    H1,
    H1Tls,
    H2,
    H2Tls,
}

/// An answer read to the end, trailers kept.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    trailers: HeaderMap,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn is_grpc(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("application/grpc"))
    }

    /// `grpc-status` from the HTTP trailers, the headers (trailers-only), or a gRPC-Web
    /// trailer frame.
    fn grpc_status(&self) -> Option<i32> {
        let field = self
            .trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        field.or_else(|| {
            let (_, trailers) = grpc_frames(&self.body).filter(|_| self.is_grpc())?;
            trailers
                .iter()
                .find(|(n, _)| n == "grpc-status")
                .and_then(|(_, v)| v.parse().ok())
        })
    }

    /// The gRPC messages of the body.
    fn messages(&self) -> Vec<Bytes> {
        grpc_frames(&self.body)
            .filter(|_| self.is_grpc())
            .map(|(messages, _)| messages)
            .unwrap_or_default()
    }

    /// Whether the answer came from the plain-HTTP site backend (the catch-all route).
    fn answered_by_site(&self) -> bool {
        self.header(interop::BACKEND_HEADER).is_some()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The measurement ids of a ListMeasurements answer (gRPC or gRPC-Web).
    fn listed_ids(&self) -> Vec<String> {
        self.messages()
            .iter()
            .flat_map(|m| {
                ListMeasurementsResponse::decode(m.clone())
                    .expect("a ListMeasurementsResponse")
                    .measurements
            })
            .map(|m| m.measurement_id)
            .collect()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} grpc-status {:?} backend {:?} body {:?}",
            self.status,
            self.grpc_status(),
            self.header(interop::BACKEND_HEADER),
            self.text()
        )
    }
}

async fn send_h1<T>(io: T, request: Request<Full<Bytes>>) -> Result<Reply, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    read_reply(sender.send_request(request).await?).await
}

async fn send_h2<T>(io: T, request: Request<Full<Bytes>>) -> Result<Reply, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    read_reply(sender.send_request(request).await?).await
}

async fn read_reply(response: Response<Incoming>) -> Result<Reply, hyper::Error> {
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = t;
                }
            }
        }
    }
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: data.freeze(),
        trailers,
    })
}

/// Header lines as the raw bytes the clients send.
fn raw<'a>(lines: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    lines.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `message` with `token` as a bearer token.
fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("token as metadata"),
    );
    request
}

/// The call was refused with `code`.
fn refused<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, code: Code, what: &str) {
    match result {
        Ok(answer) => panic!("{what}: answered instead of {code:?}: {answer:?}"),
        Err(status) => assert_eq!(status.code(), code, "{what}: {status:?}"),
    }
}

/// The gRPC(-Web) answer is `code`, without any of alice's data.
fn assert_grpc_refused(p: &Platform, reply: &Reply, code: Code, what: &str) {
    assert_eq!(reply.grpc_status(), Some(code as i32), "{what}: {reply}");
    assert!(reply.messages().is_empty(), "{what}: messages in {reply}");
    p.assert_no_alice_data(&reply.body, what);
}

/// The REST answer is `status`, without any of alice's data.
fn assert_rest_refused(p: &Platform, reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply}");
    p.assert_no_alice_data(&reply.body, what);
}

// ---------------------------------------------------------------------------------------------
// 1. Hop-by-hop nomination.
// ---------------------------------------------------------------------------------------------

/// HTTP/1.1 lets a client name headers in `Connection` for the next hop to drop. Named after
/// the gateway set `x-user-id`, it would leave ashi a request with no user at all.
#[tokio::test]
async fn connection_header_cannot_drop_the_forwarded_subject() {
    let p = Platform::start().await;
    let mallory = p.keys.token("mallory", "user");
    let alice = p.keys.token("alice", "user");
    let rest_list = "/v1/users/alice/measurements";
    let rest_get = format!("/v1/users/alice/measurements/{}", p.alice.measurement_id);
    // Each entry is one request's `Connection` headers.
    let nominations: [&[&str]; 6] = [
        &["x-user-id"],
        &["X-User-Id, close"],
        &["x-forwarded-for, x-request-id, x-ashi-service, x-user-id"],
        &["keep-alive", "x-user-id"],
        &["te, X-USER-ID", "x-ashi-service"],
        &["x-user-id,x-user-id"],
    ];

    for wire in [Wire::H1, Wire::H1Tls] {
        // alice reads her own data over the same routes.
        let own = p.web(wire, LIST, &list("alice"), Some(&alice), &[]).await;
        assert_eq!(own.grpc_status(), Some(0), "{wire:?}: {own}");
        assert_eq!(
            own.listed_ids(),
            std::slice::from_ref(&p.alice.measurement_id)
        );
        let own = p
            .rest(wire, Method::GET, rest_list, Some(&alice), &[], None)
            .await;
        assert_eq!(own.status, 200, "{wire:?}: {own}");
        assert!(contains(&own.body, p.alice.measurement_id.as_bytes()));

        for connection in nominations {
            let mut lines: Vec<(&str, &str)> =
                connection.iter().map(|v| ("connection", *v)).collect();
            lines.push(("keep-alive", "timeout=5"));
            let headers = raw(&lines);
            let what = format!("{wire:?} Connection: {connection:?}");
            let web = p
                .web(wire, LIST, &list("alice"), Some(&mallory), &headers)
                .await;
            assert_grpc_refused(
                &p,
                &web,
                Code::PermissionDenied,
                &format!("{what} gRPC-Web list"),
            );
            let get = GetMeasurementRequest {
                user_id: "alice".into(),
                measurement_id: p.alice.measurement_id.clone(),
            };
            let web = p.web(wire, GET, &get, Some(&mallory), &headers).await;
            assert_grpc_refused(
                &p,
                &web,
                Code::PermissionDenied,
                &format!("{what} gRPC-Web get"),
            );
            for path in [rest_list, &rest_get] {
                let rest = p
                    .rest(wire, Method::GET, path, Some(&mallory), &headers, None)
                    .await;
                assert_rest_refused(&p, &rest, 403, &format!("{what} REST {path}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Tokens without a usable subject.
// ---------------------------------------------------------------------------------------------

/// A signed token whose `sub` cannot become one clean `x-user-id` must not pass: the gateway
/// would otherwise forward no user (or a broken one) for a request it let through.
#[tokio::test]
async fn a_token_without_a_usable_subject_is_unauthenticated() {
    let p = Platform::start().await;
    let alice = p.keys.token("alice", "user");

    // The same routes serve a good token.
    let mut grpc = p.measurements(false).await;
    let own = grpc
        .list_measurements(bearer(&alice, list("alice")))
        .await
        .expect("alice reads her own measurements")
        .into_inner();
    assert_eq!(own.measurements[0].measurement_id, p.alice.measurement_id);

    let cases: Vec<(&str, Option<Value>)> = vec![
        ("no sub", None),
        ("empty sub", Some(json!(""))),
        ("sub with a newline", Some(json!("mallory\nalice"))),
        ("sub with CR LF", Some(json!("mallory\r\nx-user-id: alice"))),
        ("sub with NUL", Some(json!("ali\u{0}ce"))),
        ("sub with DEL", Some(json!("\u{7f}alice"))),
        ("sub with ESC", Some(json!("\u{1b}[alice"))),
        ("sub with a tab", Some(json!("ali\tce"))),
        ("sub with NEL (C1 control)", Some(json!("ali\u{85}ce"))),
        ("sub with surrounding space", Some(json!(" alice "))),
        ("overlong sub", Some(json!("a".repeat(4096)))),
        ("object sub", Some(json!({"id": "alice"}))),
        ("array sub", Some(json!(["alice"]))),
        ("boolean sub", Some(json!(true))),
        ("null sub", Some(Value::Null)),
    ];
    let mut tls = p.measurements(true).await;
    for (case, sub) in cases {
        let mut claims = claims(json!("placeholder"), "user");
        match sub {
            Some(sub) => claims["sub"] = sub,
            None => {
                claims.as_object_mut().unwrap().remove("sub");
            }
        }
        let token = p.keys.sign(&claims);
        for (client, name) in [(&mut grpc, "gRPC h2c"), (&mut tls, "gRPC TLS")] {
            refused(
                client
                    .list_measurements(bearer(&token, list("alice")))
                    .await,
                Code::Unauthenticated,
                &format!("{case}: {name}"),
            );
        }
        for wire in [Wire::H1, Wire::H2, Wire::H1Tls] {
            let web = p.web(wire, LIST, &list("alice"), Some(&token), &[]).await;
            assert_grpc_refused(
                &p,
                &web,
                Code::Unauthenticated,
                &format!("{case}: gRPC-Web {wire:?}"),
            );
        }
        let rest = p
            .rest(
                Wire::H1,
                Method::GET,
                "/v1/users/alice/measurements",
                Some(&token),
                &[],
                None,
            )
            .await;
        assert_rest_refused(&p, &rest, 401, &format!("{case}: REST"));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. JWT and transcoding on one route.
// ---------------------------------------------------------------------------------------------

/// Transcoding rebuilds the request head from an allow list of headers; the subject the JWT
/// stage forwarded must survive it, or ashi sees a request without a user.
#[tokio::test]
async fn rest_route_with_jwt_and_transcoding_keeps_the_subject() {
    let p = Platform::start().await;
    let mallory = p.keys.token("mallory", "user");
    let alice = p.keys.token("alice", "user");
    let one = format!("/v1/users/alice/measurements/{}", p.alice.measurement_id);

    for wire in [Wire::H1, Wire::H1Tls, Wire::H2, Wire::H2Tls] {
        // alice gets her list and her measurement.
        let listed = p
            .rest(
                wire,
                Method::GET,
                "/v1/users/alice/measurements",
                Some(&alice),
                &[],
                None,
            )
            .await;
        assert_eq!(listed.status, 200, "{wire:?}: {listed}");
        assert_eq!(
            listed.json()["measurements"][0]["measurementId"],
            p.alice.measurement_id.as_str()
        );
        let got = p
            .rest(wire, Method::GET, &one, Some(&alice), &[], None)
            .await;
        assert_eq!(got.status, 200, "{wire:?}: {got}");
        assert_eq!(got.json()["device"], p.alice.device.as_str());
        // mallory gets her own (empty) list: her token works on this route.
        let hers = p
            .rest(
                wire,
                Method::GET,
                "/v1/users/mallory/measurements",
                Some(&mallory),
                &[],
                None,
            )
            .await;
        assert_eq!(hers.status, 200, "{wire:?}: {hers}");

        // mallory reaches none of alice's.
        let attempts: [(Method, &str, Option<Value>); 4] = [
            (Method::GET, "/v1/users/alice/measurements", None),
            (Method::GET, &one, None),
            (Method::DELETE, &one, None),
            (
                Method::POST,
                "/v1/users/alice/uploads",
                Some(json!({"contentType": "model/ply", "contentLength": 64})),
            ),
        ];
        for (method, path, body) in attempts {
            let what = format!("{wire:?} {method} {path}");
            let reply = p.rest(wire, method, path, Some(&mallory), &[], body).await;
            assert_rest_refused(&p, &reply, 403, &what);
        }
    }
    // The refused deletes deleted nothing.
    let left = p.ashi.measurements_of("alice").await;
    assert_eq!(left.len(), 1, "alice's measurement is still there");
}

// ---------------------------------------------------------------------------------------------
// 4. Catalog writes.
// ---------------------------------------------------------------------------------------------

/// The partner route adds the service principal `partner`, which ashi lets write the catalog;
/// only its read methods may be reachable over REST. Over gRPC, catalog writes need the
/// catalog-admin role.
#[tokio::test]
async fn partner_rest_and_user_tokens_cannot_write_the_catalog() {
    let p = Platform::start().await;
    let mallory = p.keys.token("mallory", "user");
    let carol = p.keys.token("carol", "catalog-admin");

    // Partners read the catalog over REST.
    let listed = p
        .rest(Wire::H1, Method::GET, "/v1/shoes", None, &[], None)
        .await;
    assert_eq!(listed.status, 200, "{listed}");
    assert!(listed.text().contains(SEEDED_SHOE), "{listed}");
    let one = format!("/v1/shoes/{SEEDED_SHOE}");
    let got = p
        .rest(Wire::H1Tls, Method::GET, &one, None, &[], None)
        .await;
    assert_eq!(got.status, 200, "{got}");

    // Writes over the partner route, with and without a user's token.
    let put_body = json!({
        "shoeId": "hostile-put", "brand": "Hostile", "model": "Intruder",
        "category": "SHOE_CATEGORY_RUNNING", "gender": "GENDER_MEN",
        "unitSystem": "UNIT_SYSTEM_JIS_MM",
        "sizes": [{"sizeMm": 250, "innerLengthMm": 264.5, "innerBallGirthMm": 244.5}],
    });
    let import_body = json!({"csv": csv_row("hostile-import")});
    for wire in [Wire::H1, Wire::H1Tls, Wire::H2] {
        for token in [None, Some(mallory.as_str())] {
            let put = p
                .rest(
                    wire,
                    Method::PUT,
                    "/v1/shoes/hostile-put",
                    token,
                    &[],
                    Some(put_body.clone()),
                )
                .await;
            assert!(
                !put.status.is_success() && !put.answered_by_site(),
                "{wire:?} PUT /v1/shoes/hostile-put: {put}"
            );
            let import = p
                .rest(
                    wire,
                    Method::POST,
                    "/v1/shoes:importCsv",
                    token,
                    &[],
                    Some(import_body.clone()),
                )
                .await;
            assert!(
                !import.status.is_success() && !import.answered_by_site(),
                "{wire:?} POST /v1/shoes:importCsv: {import}"
            );
        }
    }

    // Over gRPC and gRPC-Web, a user's token may not write.
    let mut catalog = CatalogServiceClient::new(p.channel(false).await);
    refused(
        catalog
            .upsert_shoe(bearer(
                &mallory,
                UpsertShoeRequest {
                    shoe: Some(shoe("hostile-grpc")),
                },
            ))
            .await,
        Code::PermissionDenied,
        "gRPC UpsertShoe as a user",
    );
    refused(
        catalog
            .import_shoes_csv(bearer(
                &mallory,
                ImportShoesCsvRequest {
                    csv: csv_row("hostile-grpc-import"),
                },
            ))
            .await,
        Code::PermissionDenied,
        "gRPC ImportShoesCsv as a user",
    );
    for wire in [Wire::H1, Wire::H2Tls] {
        let upsert = UpsertShoeRequest {
            shoe: Some(shoe("hostile-web")),
        };
        let web = p.web(wire, UPSERT_SHOE, &upsert, Some(&mallory), &[]).await;
        assert_grpc_refused(&p, &web, Code::PermissionDenied, "gRPC-Web UpsertShoe");
        let import = ImportShoesCsvRequest {
            csv: csv_row("hostile-web-import"),
        };
        let web = p
            .web(wire, IMPORT_SHOES, &import, Some(&mallory), &[])
            .await;
        assert_grpc_refused(&p, &web, Code::PermissionDenied, "gRPC-Web ImportShoesCsv");
    }

    // A catalog admin may; partners then see that shoe.
    catalog
        .upsert_shoe(bearer(
            &carol,
            UpsertShoeRequest {
                shoe: Some(shoe("admin-shoe")),
            },
        ))
        .await
        .expect("a catalog admin writes the catalog");
    let admin_shoe = p
        .rest(
            Wire::H1,
            Method::GET,
            "/v1/shoes/admin-shoe",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(admin_shoe.status, 200, "{admin_shoe}");

    // Nothing of the attacks reached the catalog.
    let ids = p.ashi.shoe_ids().await;
    assert!(ids.contains(&"admin-shoe".to_owned()), "{ids:?}");
    let hostile: Vec<&String> = ids.iter().filter(|id| id.starts_with("hostile")).collect();
    assert!(hostile.is_empty(), "shoes written by attacks: {hostile:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Forged identity headers.
// ---------------------------------------------------------------------------------------------

/// A client sends the identity headers itself. On app routes the token's subject must win
/// and `x-ashi-service` must never arrive (ashi would then see two callers, or a service); on
/// the partner route ashi must see the service `partner` alone, never the client's values;
/// on any route the backend must not see them.
#[tokio::test]
async fn forged_identity_headers_never_reach_ashi() {
    let p = Platform::start().await;
    let mallory = p.keys.token("mallory", "user");
    let forgeries: [&[(&str, &str)]; 5] = [
        &[("x-user-id", "alice")],
        &[("x-ashi-service", "partner")],
        &[("x-user-id", "alice"), ("x-ashi-service", "partner")],
        &[("x-user-id", "alice"), ("x-user-id", "alice")],
        &[("X-User-Id", "alice"), ("X-Ashi-Service", "seed")],
    ];

    for lines in forgeries {
        let what = format!("{lines:?}");
        let forged = &raw(lines)[..];
        // gRPC with mallory's token.
        let mut grpc = p.measurements(false).await;
        let mut request = bearer(&mallory, list("alice"));
        for (name, value) in lines {
            let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes()).unwrap();
            let value = tonic::metadata::MetadataValue::try_from(*value).unwrap();
            request.metadata_mut().append(key, value);
        }
        refused(
            grpc.list_measurements(request).await,
            Code::PermissionDenied,
            &format!("gRPC {what}"),
        );
        // gRPC-Web and REST, with mallory's token and with none.
        for wire in [Wire::H1, Wire::H2, Wire::H1Tls] {
            let web = p
                .web(wire, LIST, &list("alice"), Some(&mallory), forged)
                .await;
            let case = format!("gRPC-Web {wire:?} {what}");
            assert_grpc_refused(&p, &web, Code::PermissionDenied, &case);
            let web = p.web(wire, LIST, &list("alice"), None, forged).await;
            let case = format!("gRPC-Web {wire:?} no token {what}");
            assert_grpc_refused(&p, &web, Code::Unauthenticated, &case);
            let path = "/v1/users/alice/measurements";
            let rest = p
                .rest(wire, Method::GET, path, Some(&mallory), forged, None)
                .await;
            assert_rest_refused(&p, &rest, 403, &format!("REST {wire:?} {what}"));
            let rest = p.rest(wire, Method::GET, path, None, forged, None).await;
            let case = format!("REST {wire:?} no token {what}");
            assert_rest_refused(&p, &rest, 401, &case);
        }
    }

    // The partner route: whatever identity headers the client adds, ashi sees the service
    // `partner` alone (which may read any user's measurement through sizing). Had the client's
    // x-user-id arrived too, ashi would refuse a call with two callers, or narrow it to mallory.
    let partner_forgeries: [&[(&str, &str)]; 4] = [
        &[],
        &[("x-user-id", "mallory")],
        &[("x-ashi-service", "evil"), ("x-user-id", "mallory")],
        &[("x-ashi-service", "")],
    ];
    let mut platforms = vec![&p];
    // The same with a partner route that lists the identity headers among those transcoding
    // passes on: either the config is refused, or the client's values still never arrive.
    let careless = Platform::try_start_variant(Variant::CarelessPartner).await;
    match &careless {
        Ok(careless) => platforms.push(careless),
        Err(refusal) => assert!(
            refusal.contains("x-user-id") || refusal.contains("internal"),
            "the careless config is refused for another reason: {refusal}"
        ),
    }
    for platform in platforms {
        let diagnose = json!({
            "measurement": {"userId": "alice", "measurementId": platform.alice.measurement_id},
            "table": "JIS_TABLE_MEN",
        });
        for lines in partner_forgeries {
            let reply = platform
                .rest(
                    Wire::H1,
                    Method::POST,
                    "/v1/sizing:diagnose",
                    None,
                    &raw(lines),
                    Some(diagnose.clone()),
                )
                .await;
            assert_eq!(reply.status, 200, "partner diagnose {lines:?}: {reply}");
            // alice's feet: 251 mm left, 254 mm right.
            assert_eq!(reply.json()["lengthDifferenceMm"], -3.0, "{reply}");
        }
    }

    // Any route: the site behind the catch-all sees neither header, nor the look-alikes a
    // CGI-style backend (nginx variables, WSGI) would read as the same variable.
    for wire in [Wire::H1, Wire::H2] {
        let mut lines = vec![
            ("x-user-id", "alice"),
            ("X-Ashi-Service", "partner"),
            ("x_user_id", "alice"),
            ("x-ashi_service", "partner"),
        ];
        if wire == Wire::H1 {
            lines.push(("connection", "keep-alive"));
        }
        let forged = raw(&lines);
        let echoed = p
            .rest(wire, Method::GET, "/site/page", None, &forged, None)
            .await;
        assert!(echoed.answered_by_site(), "{echoed}");
        let seen = &echoed.json()["headers"];
        assert!(seen.get("x-user-id").is_none(), "{wire:?}: {seen}");
        assert!(seen.get("x-ashi-service").is_none(), "{wire:?}: {seen}");
        assert!(seen.get("x_user_id").is_none(), "{wire:?}: {seen}");
        assert!(seen.get("x-ashi_service").is_none(), "{wire:?}: {seen}");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Secret-valued config.
// ---------------------------------------------------------------------------------------------

/// A route gated by a header whose expected value is a secret: what must match is the secret,
/// not the `<redacted>` the config shows in its place.
#[tokio::test]
async fn a_secret_header_gate_opens_for_the_secret_not_its_redaction() {
    let p = Platform::start().await;
    let path = "/v1/users/alice/measurements";
    let gate = secrets().gate.as_bytes();

    // The real secret opens the back door (no token needed there).
    let opened = p
        .rest(Wire::H1, Method::GET, path, None, &[("x-gate", gate)], None)
        .await;
    assert_eq!(opened.status, 200, "{opened}");
    assert!(contains(&opened.body, p.alice.measurement_id.as_bytes()));

    // Anything else falls through to the users route, which wants a token.
    let reference = format!("${{env:{GATE_VAR}}}");
    for wrong in [REDACTED.as_bytes(), reference.as_bytes(), b"", b"gate"] {
        for wire in [Wire::H1, Wire::H2Tls] {
            let reply = p
                .rest(wire, Method::GET, path, None, &[("x-gate", wrong)], None)
                .await;
            let what = format!("{wire:?} x-gate: {:?}", String::from_utf8_lossy(wrong));
            assert_rest_refused(&p, &reply, 401, &what);
        }
    }
}

/// A provider whose issuer is a secret: a token must name the secret issuer, not `<redacted>`.
#[tokio::test]
async fn a_secret_issuer_accepts_the_secret_not_its_redaction() {
    let p = Platform::start().await;
    let token_from = |issuer: &str| {
        let mut claims = claims(json!("alice"), "user");
        claims["iss"] = json!(issuer);
        p.keys.sign(&claims)
    };
    let route: [(&str, &[u8]); 1] = [("x-idp", b"secret-idp")];
    let via_route = |token: &str| {
        let mut request = bearer(token, list("alice"));
        request
            .metadata_mut()
            .insert("x-idp", "secret-idp".parse().unwrap());
        request
    };
    let mut grpc = p.measurements(false).await;

    // The real issuer passes.
    let real = token_from(&secrets().issuer);
    let own = grpc
        .list_measurements(via_route(&real))
        .await
        .expect("a token of the secret issuer")
        .into_inner();
    assert_eq!(own.measurements[0].measurement_id, p.alice.measurement_id);
    let web = p
        .web(Wire::H1, LIST, &list("alice"), Some(&real), &route)
        .await;
    assert_eq!(
        web.listed_ids(),
        std::slice::from_ref(&p.alice.measurement_id),
        "{web}"
    );

    // The redaction, the reference and the other provider's issuer do not.
    let reference = format!("${{env:{ISSUER_VAR}}}");
    for issuer in [REDACTED, reference.as_str(), ISSUER, ""] {
        let token = token_from(issuer);
        refused(
            grpc.list_measurements(via_route(&token)).await,
            Code::Unauthenticated,
            &format!("gRPC iss {issuer:?}"),
        );
        for wire in [Wire::H1, Wire::H2] {
            let web = p
                .web(wire, LIST, &list("alice"), Some(&token), &route)
                .await;
            let what = format!("gRPC-Web {wire:?} iss {issuer:?}");
            assert_grpc_refused(&p, &web, Code::Unauthenticated, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Content types.
// ---------------------------------------------------------------------------------------------

/// Media types compare case-insensitively and may carry parameters, so these are gRPC and must
/// meet the gRPC route's JWT; a type that starts like gRPC(-Web) but is not one cleanly must be
/// refused, never sent on as plain HTTP (to the catch-all, or to ashi on a route without JWT).
#[tokio::test]
async fn grpc_content_type_variants_cannot_bypass_the_grpc_route() {
    let p = Platform::start().await;
    let alice = p.keys.token("alice", "user");
    let mallory = p.keys.token("mallory", "user");

    let grpc_types: [&[u8]; 6] = [
        b"application/grpc;x=1",
        b"application/grpc; x=1",
        b"Application/grpc",
        b"APPLICATION/GRPC+PROTO",
        b"application/GRPC+proto;charset=utf-8",
        b"application/grpc+proto",
    ];
    for content_type in grpc_types {
        for wire in [Wire::H2, Wire::H2Tls] {
            let what = format!("{wire:?} {:?}", String::from_utf8_lossy(content_type));
            let anonymous = p
                .grpc_raw(wire, LIST, content_type, &list("alice"), None)
                .await;
            assert!(
                !anonymous.answered_by_site(),
                "{what}: sent to the site: {anonymous}"
            );
            assert_grpc_refused(&p, &anonymous, Code::Unauthenticated, &what);
            // They are gRPC: alice's token reads her data through the same route.
            let own = p
                .grpc_raw(wire, LIST, content_type, &list("alice"), Some(&alice))
                .await;
            assert_eq!(own.grpc_status(), Some(0), "{what} as alice: {own}");
            assert_eq!(
                own.listed_ids(),
                std::slice::from_ref(&p.alice.measurement_id),
                "{what}"
            );
        }
    }

    // Not cleanly gRPC or gRPC-Web: refused (415 or a gRPC error), whoever asks.
    let unclear_grpc: [&[u8]; 3] = [
        b"application/grpc\xff",
        b"application/grpc+\xffproto",
        b"application/grpcx",
    ];
    let unclear_web: [&[u8]; 3] = [
        b"application/grpc-web\xff",
        b"application/grpc-web+proto\xff",
        b"application/grpc-web-text\xff",
    ];
    for token in [None, Some(mallory.as_str())] {
        for content_type in unclear_grpc {
            for wire in [Wire::H2, Wire::H2Tls] {
                let reply = p
                    .grpc_raw(wire, LIST, content_type, &list("alice"), token)
                    .await;
                let what = format!(
                    "gRPC {wire:?} {:?} token {}",
                    String::from_utf8_lossy(content_type),
                    token.is_some()
                );
                assert_cleanly_refused(&p, &reply, &what);
            }
        }
        for content_type in unclear_web {
            for wire in [Wire::H1, Wire::H2, Wire::H1Tls] {
                let reply = p
                    .web(
                        wire,
                        LIST,
                        &list("alice"),
                        token,
                        &[("content-type", content_type)],
                    )
                    .await;
                let what = format!(
                    "gRPC-Web {wire:?} {:?} token {}",
                    String::from_utf8_lossy(content_type),
                    token.is_some()
                );
                assert_cleanly_refused(&p, &reply, &what);
            }
        }
    }
}

/// 415, or a gRPC error; never the site, never a successful call, never alice's data.
fn assert_cleanly_refused(p: &Platform, reply: &Reply, what: &str) {
    assert!(
        !reply.answered_by_site(),
        "{what}: sent on as plain HTTP: {reply}"
    );
    let refused = reply.status == StatusCode::UNSUPPORTED_MEDIA_TYPE
        || reply.grpc_status().is_some_and(|code| code != 0);
    assert!(refused, "{what}: not refused: {reply}");
    assert!(reply.messages().is_empty(), "{what}: messages in {reply}");
    p.assert_no_alice_data(&reply.body, what);
}

// ---------------------------------------------------------------------------------------------
// 8. Any headers at all.
// ---------------------------------------------------------------------------------------------

/// Whatever headers a client adds to a request with mallory's valid token (identity headers in
/// any case, duplicates, `Connection` lists naming them, non-ASCII values), the backend sees
/// exactly one `x-user-id`, `mallory`, and no `x-ashi-service`. Raw HTTP/1.1 bytes, an echo
/// backend behind a JWT route with `forward_claims`.
#[test]
fn no_client_headers_change_the_forwarded_subject() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let keys = Keys::generate();
    let token = keys.token("mallory", "user");
    let (edge, _gateway, _echo) = runtime.block_on(async {
        let (echo, echo_handle) = http_backend("echo").await;
        let dir = TempDir::new("hostile-prop");
        let jwks = dir.write("jwks.json", &keys.jwks);
        let yaml = fill(
            r#"
access_log: { enabled: false }
internal_headers: [x-user-id, x-ashi-service]
listeners:
  - name: plain
    address: 127.0.0.1:0
jwt_providers:
  - name: users
    issuer: "@issuer@"
    audiences: [ashi]
    keys: { jwks_file: "@jwks@" }
routes:
  - name: echo
    match: { path_prefix: / }
    jwt: { provider: users, require: { role: [user] }, forward_claims: { sub: x-user-id } }
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@echo@" }]
"#,
            &[
                ("issuer", ISSUER.to_owned()),
                ("jwks", jwks.display().to_string()),
                ("echo", echo.to_string()),
            ],
        );
        let gateway = start_gateway_in(dir, &yaml).await;
        (gateway.listener("plain"), gateway, echo_handle)
    });

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(
        &proptest::collection::vec(client_header(), 0..10),
        |headers| {
            let (status, seen) = runtime.block_on(echo_through(edge, &token, &headers));
            prop_assert_eq!(status, 200, "the request passes: {:?}", seen);
            prop_assert_eq!(
                seen.get("x-user-id"),
                Some(&json!("mallory")),
                "one x-user-id, the subject: {}",
                seen
            );
            prop_assert!(seen.get("x-ashi-service").is_none(), "{}", seen);
            Ok(())
        },
    );
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// Names a client may use: the identity headers in odd casing, headers a proxy treats
/// specially, and any token; never ones that change how the request is framed or who sent it.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "x-user-id",
            "X-User-Id",
            "X-USER-ID",
            "x-User-ID",
            "x-ashi-service",
            "X-Ashi-Service",
            "x_user_id",
            "x-forwarded-for",
            "x-real-ip",
            "x-request-id",
            "forwarded",
            "keep-alive",
            "proxy-connection",
            "te",
            "via",
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z0-9-]{0,10}".prop_filter("not a framing or auth header", |n| !reserved(n)),
    ]
}

fn reserved(name: &str) -> bool {
    [
        "host",
        "content-length",
        "transfer-encoding",
        "upgrade",
        "expect",
        "authorization",
        "connection",
    ]
    .contains(&name)
}

/// Values: plausible ids, and any bytes a header value may hold (no CR, LF, NUL or DEL).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec!["alice", "mallory", "partner", "", " alice "])
            .prop_map(|v| v.as_bytes().to_vec()),
        proptest::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..24),
    ]
}

/// A `Connection` list naming identity and other headers, in any case.
fn connection_value() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "x-user-id",
            "X-User-Id",
            "X-USER-ID",
            "x-ashi-service",
            "close",
            "keep-alive",
            "te",
            "x-forwarded-for",
            "x-request-id",
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z0-9-]{0,10}".prop_filter("not a framing or auth header", |n| !reserved(n)),
    ];
    (
        proptest::collection::vec(token, 1..5),
        prop::sample::select(vec![",", ", ", " ,", ",,"]),
    )
        .prop_map(|(tokens, separator)| tokens.join(separator).into_bytes())
}

fn client_header() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        3 => (header_name(), header_value()),
        1 => (
            prop::sample::select(vec!["connection", "Connection", "CONNECTION"]),
            connection_value()
        )
            .prop_map(|(name, value)| (name.to_owned(), value)),
    ]
}

/// One GET with mallory's token and `headers`, written as raw HTTP/1.1; the status, and the
/// headers the echo backend saw.
async fn echo_through(
    edge: SocketAddr,
    token: &str,
    headers: &[(String, Vec<u8>)],
) -> (u16, Value) {
    let mut request =
        format!("GET /whoami HTTP/1.1\r\nhost: {edge}\r\nauthorization: Bearer {token}\r\n")
            .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let mut stream = TcpStream::connect(edge).await.expect("connect");
    stream.write_all(&request).await.expect("send");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_h1(&mut stream))
        .await
        .expect("an answer within 10 s");
    let seen = match status {
        200 => serde_json::from_slice::<Value>(&body).expect("echo JSON")["headers"].clone(),
        _ => json!({"status_body": String::from_utf8_lossy(&body)}),
    };
    (status, seen)
}

async fn read_more(stream: &mut TcpStream, body: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.expect("read body");
    assert!(n > 0, "connection closed in the body");
    body.extend_from_slice(&chunk[..n]);
}

/// Reads one HTTP/1.1 response: its status and body (by content-length or chunked).
async fn read_h1(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "connection closed before the response head");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut body = buffer[head_end..].to_vec();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let field = |name: &str| {
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    if let Some(length) = field("content-length") {
        let length: usize = length.parse().expect("content-length");
        while body.len() < length {
            read_more(stream, &mut body).await;
        }
        body.truncate(length);
        return (status, body);
    }
    if field("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut decoded = Vec::new();
        let mut at = 0;
        loop {
            let line_end = loop {
                if let Some(i) = body[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                read_more(stream, &mut body).await;
            };
            let size_text = String::from_utf8_lossy(&body[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            let data_start = line_end + 2;
            while body.len() < data_start + size + 2 {
                read_more(stream, &mut body).await;
            }
            if size == 0 {
                return (status, decoded);
            }
            decoded.extend_from_slice(&body[data_start..data_start + size]);
            at = data_start + size + 2;
        }
    }
    (status, body)
}
