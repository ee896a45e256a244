//! Driving the load: workers, the closed and open loop, the measured window, and the JSON
//! object a run prints.
//!
//! Closed loop (no `--rate`): each worker sends its next request as soon as the last one
//! finished. Open loop (`--rate R`): request `i` is due at `start + i / R`; a free worker takes
//! the next due request and sends it at its due time. When every worker was busy past the due
//! time, latency counts from the due time, so a slow proxy cannot hide its queueing by slowing
//! the generator down (coordinated omission). A worker that was idle and only woke up late
//! (the timer ticks in milliseconds) counts from when it actually sent.
//!
//! Every run first warms up for `--warmup`; only requests started after that are counted, and
//! the proxy's CPU time is read at the start and the end of the measured window.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::Error;
use crate::cli::{Mode, ProbeArgs, QuietArgs, RunArgs, key_value};
use crate::procfs::Watch;
use crate::setup::Setup;
use crate::stats::Recorder;

/// The outcome of one request: the number of response messages, or an error kind.
pub type Outcome = Result<u64, String>;

/// One kind of request, as a worker sends it again and again. Each worker owns its `Op`,
/// so connection state (an HTTP/1.1 connection, a cached gRPC client) needs no locking.
pub trait Op: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// When to send and what to count, shared by all workers of a run.
struct Plan {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Interval between due times of an open-loop run.
    interval: Option<Duration>,
    next_slot: AtomicU64,
    timeout: Duration,
}

impl Plan {
    /// When the next request counts as sent, or `None` once the run is over: its due time
    /// if it is late (due before a worker was free), else when it is sent.
    async fn next(&self) -> Option<Instant> {
        let Some(interval) = self.interval else {
            let now = Instant::now();
            return (now < self.end).then_some(now);
        };
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let due = self.start + interval.mul_f64(slot as f64);
        if due >= self.end {
            return None;
        }
        let now = Instant::now();
        if now >= due {
            return Some(due);
        }
        tokio::time::sleep_until(due.into()).await;
        Some(Instant::now())
    }
}

async fn worker<O: Op>(mut op: O, plan: Arc<Plan>) -> Recorder {
    let mut recorder = Recorder::new();
    while let Some(began) = plan.next().await {
        let result = tokio::time::timeout(plan.timeout, op.call()).await;
        if began < plan.measure_from {
            continue;
        }
        match result {
            Ok(Ok(messages)) => recorder.ok(began.elapsed(), messages),
            Ok(Err(kind)) => recorder.error(kind),
            Err(_) => recorder.error("timeout".to_owned()),
        }
    }
    recorder
}

/// `loadgen run`: drives the load and prints the JSON results on stdout.
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let setup = Setup::resolve(&args.target).await?;
    let watch = Watch::new(args.watch_pid.clone());
    let mut tags = Map::new();
    for tag in &args.tag {
        let (key, value) = key_value(tag)?;
        tags.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let mut out = json!({
        "mode": setup.mode.name(),
        "target": args.target.target,
        "tags": tags,
    });
    let results = if setup.mode == Mode::Idle {
        crate::idle::run(&setup, &args, &watch).await?
    } else {
        load(&setup, &args, &watch).await?
    };
    if let (Value::Object(out), Value::Object(results)) = (&mut out, results) {
        out.extend(results);
    }
    eprintln!("loadgen: {}", summary(&out));
    println!("{out}");
    let other = out["machine"]["other_s"].as_f64().unwrap_or(0.0) / args.duration.as_secs_f64();
    match args.max_other {
        Some(max) if other > max => Err(Box::new(Disturbed(other))),
        _ => Ok(()),
    }
}

/// A run during which other processes took more CPU than `--max-other` allows.
#[derive(Debug)]
pub struct Disturbed(f64);

impl std::fmt::Display for Disturbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "other processes used {:.0}% of a CPU during the measurement",
            self.0 * 100.0
        )
    }
}

impl std::error::Error for Disturbed {}

/// `loadgen quiet`: returns once the whole machine was busy for less than `--below` of one
/// CPU during one second.
pub fn quiet(args: &QuietArgs) -> Result<(), Error> {
    let deadline = Instant::now() + args.wait;
    let mut last = f64::NAN;
    while Instant::now() < deadline {
        let before = crate::procfs::machine_seconds();
        std::thread::sleep(Duration::from_secs(1));
        let after = crate::procfs::machine_seconds();
        let (Some((busy0, _)), Some((busy1, _))) = (before, after) else {
            return Ok(());
        };
        last = busy1 - busy0;
        if last < args.below {
            return Ok(());
        }
    }
    Err(format!(
        "the machine stayed busy ({:.0}% of a CPU in the last second)",
        last * 100.0
    )
    .into())
}

/// One line for people watching a run: throughput, latency, errors, memory per connection.
fn summary(out: &Value) -> String {
    let number = |path: &[&str]| {
        path.iter()
            .try_fold(out, |v, key| v.get(key))
            .and_then(Value::as_f64)
    };
    let mut line = format!(
        "{} {}: {:.0} req/s",
        out["mode"].as_str().unwrap_or("?"),
        out["target"].as_str().unwrap_or("?"),
        number(&["rps"]).unwrap_or(0.0)
    );
    if out["mode"] == "grpc-stream" || out["mode"] == "grpc-bidi" {
        line += &format!(" ({:.0} msg/s)", number(&["mps"]).unwrap_or(0.0));
    }
    for (name, key) in [("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")] {
        if let Some(v) = number(&["latency_us", key]) {
            line += &format!(", {name} {v:.0} us");
        }
    }
    if let Some(bytes) = number(&["idle", "bytes_per_connection"]) {
        line += &format!(", {:.1} KiB per idle connection", bytes / 1024.0);
    }
    if let Some(cpu) = number(&["proxy", "cpu_s"]) {
        line += &format!(", proxy CPU {cpu:.2} s");
    }
    line += &format!(
        ", {} errors {}",
        number(&["errors"]).unwrap_or(0.0),
        out["errors_by_kind"]
    );
    line
}

/// Runs the workers of a throughput or latency scenario.
async fn load(setup: &Arc<Setup>, args: &RunArgs, watch: &Watch) -> Result<Value, Error> {
    if args.concurrency == 0 || args.connections == 0 {
        return Err("--concurrency and --connections must be at least 1".into());
    }
    let interval = match args.rate {
        Some(rate) if rate.is_finite() && rate > 0.0 => Some(Duration::from_secs_f64(1.0 / rate)),
        Some(_) => return Err("--rate must be a positive number".into()),
        None => None,
    };
    // Connect before the clock starts, so a dead target fails here and not as a flood of
    // errors, and handshakes do not count as latency.
    let grpc = match setup.mode {
        Mode::GrpcUnary | Mode::GrpcStream | Mode::GrpcBidi => {
            Some(crate::grpc::Connections::open(setup.clone(), args.connections).await?)
        }
        _ => None,
    };
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let plan = Arc::new(Plan {
        start,
        measure_from,
        end: measure_from + args.duration,
        interval,
        next_slot: AtomicU64::new(0),
        timeout: setup.timeout,
    });
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..args.concurrency {
        let plan = plan.clone();
        match (setup.mode, &grpc) {
            (Mode::GrpcUnary, Some(connections)) => {
                workers.spawn(worker(crate::grpc::Unary::new(connections, index), plan));
            }
            (Mode::GrpcStream, Some(connections)) => {
                workers.spawn(worker(crate::grpc::Stream::new(connections, index), plan));
            }
            (Mode::GrpcBidi, Some(connections)) => {
                workers.spawn(worker(
                    crate::grpc_bidi::Bidi::new(connections, index),
                    plan,
                ));
            }
            (Mode::GrpcWebUnary, _) => {
                workers.spawn(worker(crate::grpc_web::Unary::new(setup.clone()), plan));
            }
            (Mode::H1Get | Mode::RestUnary, _) => {
                workers.spawn(worker(crate::h1::Get::new(setup.clone()), plan));
            }
            (Mode::TlsHandshake, _) => {
                workers.spawn(worker(crate::tls::Handshake::new(setup.clone()), plan));
            }
            _ => return Err(format!("{} is not a load mode", setup.mode.name()).into()),
        }
    }
    let generator = Watch::new(vec![std::process::id()]);
    let backend = Watch::new(args.backend_pid.clone());
    tokio::time::sleep_until(measure_from.into()).await;
    let before = [watch.sample(), generator.sample(), backend.sample()];
    let machine_before = crate::procfs::machine_seconds();
    tokio::time::sleep_until(plan.end.into()).await;
    let after = [watch.sample(), generator.sample(), backend.sample()];
    let machine_after = crate::procfs::machine_seconds();
    let mut total = Recorder::new();
    while let Some(done) = workers.join_next().await {
        total.merge(done?);
    }
    let mut results = total.to_json(args.duration);
    if let Value::Object(fields) = &mut results {
        fields.insert(
            "settings".to_owned(),
            json!({
                "duration_s": args.duration.as_secs_f64(),
                "warmup_s": args.warmup.as_secs_f64(),
                "connections": match setup.mode {
                    Mode::GrpcUnary | Mode::GrpcStream | Mode::GrpcBidi => args.connections,
                    _ => args.concurrency,
                },
                "concurrency": args.concurrency,
                "rate": args.rate,
                "size": setup.size,
                "stream_messages": matches!(setup.mode, Mode::GrpcStream | Mode::GrpcBidi)
                    .then_some(setup.stream_messages),
            }),
        );
        if !watch.is_empty() {
            fields.insert(
                "proxy".to_owned(),
                json!({
                    "pids": args.watch_pid,
                    "processes": after[0].processes,
                    "cpu_s": after[0].cpu_seconds_since(&before[0]),
                    "peak_rss_kib": after[0].hwm_kib,
                    "rss_kib": after[0].rss_kib,
                }),
            );
        }
        let cpu: Vec<f64> = (0..3)
            .map(|i| after[i].cpu_seconds_since(&before[i]))
            .collect();
        fields.insert("generator".to_owned(), json!({ "cpu_s": cpu[1] }));
        if !backend.is_empty() {
            fields.insert("backend".to_owned(), json!({ "cpu_s": cpu[2] }));
        }
        if let (Some((busy0, steal0)), Some((busy1, steal1))) = (machine_before, machine_after) {
            // Without a proxy the watched process is the backend: count it once.
            let backend_is_proxy = args
                .backend_pid
                .iter()
                .any(|pid| args.watch_pid.contains(pid));
            let ours = cpu[0] + cpu[1] + if backend_is_proxy { 0.0 } else { cpu[2] };
            fields.insert(
                "machine".to_owned(),
                json!({
                    "busy_s": busy1 - busy0,
                    "steal_s": steal1 - steal0,
                    "other_s": (busy1 - busy0 - ours).max(0.0),
                }),
            );
        }
    }
    Ok(results)
}

/// `loadgen probe`: one request at a time until one succeeds or `--wait` runs out.
pub async fn probe(args: ProbeArgs) -> Result<(), Error> {
    let setup = Setup::resolve(&args.target).await?;
    let deadline = Instant::now() + args.wait;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match tokio::time::timeout(setup.timeout, one_request(&setup)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(kind)) => last = kind,
            Err(_) => last = "timeout".to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{} did not answer within {:?}: {last}",
        args.target.target, args.wait
    )
    .into())
}

/// One request of the mode on a fresh connection.
async fn one_request(setup: &Arc<Setup>) -> Result<(), String> {
    match setup.mode {
        Mode::GrpcUnary | Mode::GrpcStream | Mode::GrpcBidi => {
            let connections = crate::grpc::Connections::open(setup.clone(), 1)
                .await
                .map_err(|e| e.to_string())?;
            let outcome = match setup.mode {
                Mode::GrpcUnary => crate::grpc::Unary::new(&connections, 0).call().await,
                Mode::GrpcBidi => crate::grpc_bidi::Bidi::new(&connections, 0).call().await,
                _ => crate::grpc::Stream::new(&connections, 0).call().await,
            };
            outcome.map(drop)
        }
        Mode::GrpcWebUnary => crate::grpc_web::Unary::new(setup.clone())
            .call()
            .await
            .map(drop),
        Mode::H1Get | Mode::RestUnary => crate::h1::Get::new(setup.clone()).call().await.map(drop),
        Mode::TlsHandshake => crate::tls::Handshake::new(setup.clone())
            .call()
            .await
            .map(drop),
        Mode::Idle => crate::idle::open_one(setup).await.map(drop),
    }
}
