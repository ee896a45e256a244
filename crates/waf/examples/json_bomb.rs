//! Runs the JSON bomb of a hostile-load report through the full OWASP CRS and prints what
//! it cost: `{"AAAA…(20,000 A's)": [0, 0, … 20,000 zeros]}`, 60 KB, with the JSON body
//! processor ModSecurity recommends.
//!
//! `cargo run --release -p waf --example json_bomb [path/to/crs [On|DetectionOnly [Reject|ProcessPartial]]]`
//! prints the verdict, the CPU time of the request and the process's peak resident memory
//! (VmHWM) before and after; run each mode in its own process, as the peak is per process.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Instant;

use waf::RuleSet;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let crs = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs"))
    });
    let engine = args.next().unwrap_or_else(|| "On".into());
    let action = args.next().unwrap_or_else(|| "Reject".into());
    let setup = format!(
        "SecRuleEngine {engine}\nSecRequestBodyAccess On\nSecRequestBodyLimitAction {action}\n\
         SecRule REQUEST_HEADERS:Content-Type \"^application/json\" \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'\"\n\
         Include {crs}/crs-setup.conf.example\nInclude {crs}/rules/*.conf\n",
        crs = crs.display()
    );
    let rules = match RuleSet::from_text(&setup, &crs.join("bomb.conf")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let body = format!(
        "{{\"{}\":[{}]}}",
        "A".repeat(20_000),
        vec!["0"; 20_000].join(",")
    );
    let before = peak_rss_kib();
    let started = Instant::now();
    let mut tx = rules.transaction();
    tx.connection(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)),
        40000,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        443,
    );
    tx.request_line("POST", "/v1/measurements", "HTTP/1.1");
    tx.request_header("Host", b"shop.example");
    tx.request_header(
        "User-Agent",
        b"Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
    );
    tx.request_header("Accept", b"application/json");
    tx.request_header("Content-Type", b"application/json");
    tx.request_header("Content-Length", body.len().to_string().as_bytes());
    let mut verdict = tx.process_request_headers();
    if verdict == waf::Verdict::Continue {
        verdict = tx.append_request_body(body.as_bytes());
    }
    if verdict == waf::Verdict::Continue {
        verdict = tx.process_request_body();
    }
    tx.process_logging();
    let elapsed = started.elapsed();
    let ids: Vec<u32> = tx.matched_rules().iter().map(|m| m.id).collect();
    drop(tx);
    println!(
        "engine {engine}, {action}: body {} bytes, {verdict:?}, rules {ids:?}\n  \
         {elapsed:?}, peak RSS {} MiB before, {} MiB after",
        body.len(),
        before / 1024,
        peak_rss_kib() / 1024
    );
}
