//! Measures how many requests per second one core runs through the full OWASP CRS
//! (paranoia level 1 and 4), for a benign GET, a form POST, a JSON POST and a gRPC unary
//! call fed as the gateway feeds it (headers, then one message's fields).
//!
//! `cargo run --release -p waf --example crs_throughput [path/to/crs [requests per shape
//! [shape]]]` (a fixed request count, rather than two seconds per shape, suits `perf stat`;
//! a shape such as `gRPC` runs only the shapes whose names contain it).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use waf::RuleSet;

fn setup(crs: &std::path::Path, paranoia: u8) -> String {
    format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\n\
         SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         Include {}/crs-setup.conf.example\n\
         SecAction \"id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={paranoia}\"\n\
         SecAction \"id:900220,phase:1,pass,nolog,setvar:'tx.allowed_request_content_type=|application/x-www-form-urlencoded| |multipart/form-data| |text/xml| |application/xml| |application/soap+xml| |application/json| |application/grpc|'\"\n\
         Include {}/rules/*.conf\n",
        crs.display(),
        crs.display()
    )
}

struct Shape {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    content_type: Option<&'static str>,
    body: Body,
}

enum Body {
    /// Buffered whole, parsed by the engine's body processor.
    Whole(&'static [u8]),
    /// One gRPC message, its fields already read as arguments (as the gateway does).
    Message(&'static [(&'static str, &'static [u8])]),
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "GET with query",
        method: "GET",
        uri: "/api/items?page=2&sort=name&q=blue+shoes",
        content_type: None,
        body: Body::Whole(b""),
    },
    Shape {
        name: "form POST",
        method: "POST",
        uri: "/login",
        content_type: Some("application/x-www-form-urlencoded"),
        body: Body::Whole(b"user=alice&password=correct+horse+battery&remember=1"),
    },
    Shape {
        name: "JSON POST",
        method: "POST",
        uri: "/v1/measurements",
        content_type: Some("application/json"),
        body: Body::Whole(
            br#"{"foot":{"length":251.5,"width":98.2},"side":"left","note":"after run"}"#,
        ),
    },
    Shape {
        name: "gRPC unary",
        method: "POST",
        uri: "/grpc.testing.TestService/UnaryCall",
        content_type: Some("application/grpc"),
        body: Body::Message(&[
            ("2", b"64"),
            (
                "3.2",
                b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ),
        ]),
    },
];

fn main() {
    let crs = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs"))
        });
    let fixed: Option<u32> = std::env::args().nth(2).and_then(|n| n.parse().ok());
    let only = std::env::args().nth(3).unwrap_or_default();
    for paranoia in [1u8, 4] {
        let started = Instant::now();
        let rules = match RuleSet::from_text(&setup(&crs, paranoia), &crs.join("bench.conf")) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        println!(
            "paranoia {paranoia}: {} rules loaded in {:?}",
            rules.rule_count(),
            started.elapsed()
        );
        for shape in SHAPES.iter().filter(|s| s.name.contains(&only)) {
            let mut n = 0u32;
            let start = Instant::now();
            while fixed.map_or(start.elapsed() < Duration::from_secs(2), |f| n < f) {
                let mut tx = rules.transaction();
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4));
                tx.connection(ip, 40000, IpAddr::V4(Ipv4Addr::LOCALHOST), 443);
                match &shape.body {
                    Body::Whole(body) => {
                        tx.request_line(shape.method, shape.uri, "HTTP/1.1");
                        tx.request_header("Host", b"shop.example");
                        tx.request_header(
                            "User-Agent",
                            b"Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
                        );
                        tx.request_header("Accept", b"text/html,application/json");
                        if let Some(ct) = shape.content_type {
                            tx.request_header("Content-Type", ct.as_bytes());
                            tx.request_header("Content-Length", body.len().to_string().as_bytes());
                        }
                        tx.process_request_headers();
                        tx.append_request_body(body);
                        tx.process_request_body();
                    }
                    Body::Message(fields) => {
                        tx.request_line(shape.method, shape.uri, "HTTP/2.0");
                        tx.request_header("host", b"api.example:8443");
                        tx.request_header("te", b"trailers");
                        tx.request_header("content-type", b"application/grpc");
                        tx.request_header("user-agent", b"tonic/0.14.2");
                        tx.process_request_headers();
                        let args: Vec<(String, Vec<u8>)> = fields
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_vec()))
                            .collect();
                        let raw = [&b"\x10\x40\x1a\x42\x12\x40"[..], fields[1].1].concat();
                        tx.process_message(&args, &raw);
                    }
                }
                tx.process_logging();
                n += 1;
            }
            let per = start.elapsed() / n.max(1);
            println!(
                "  {:<16} {:>8.0} req/s  ({per:?} per request)",
                shape.name,
                f64::from(n) / start.elapsed().as_secs_f64()
            );
        }
    }
}
