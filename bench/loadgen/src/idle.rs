//! Idle connections: open many, let each carry one request, then hold them all idle and
//! watch the proxy's memory. What a connection costs a proxy while nothing happens on it is
//! what decides how many clients (mobile apps keep connections open) one instance can hold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use crate::cli::{IdleProto, RunArgs};
use crate::procfs::Watch;
use crate::setup::Setup;
use crate::stats::Recorder;

/// How often memory is read while the connections are held.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// An open connection: its sender keeps it open, its driver ends when the server closes it.
pub struct Held {
    driver: JoinHandle<()>,
    _sender: Box<dyn std::any::Any + Send>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Opens one connection of `--idle-proto` and completes one request on it.
pub async fn open_one(setup: &Setup) -> Result<Held, String> {
    match setup.idle_proto {
        IdleProto::H1 => {
            let (mut sender, driver) = crate::h1::connect(setup).await?;
            crate::h1::get(setup, &mut sender, false).await?;
            Ok(Held {
                driver,
                _sender: Box::new(sender),
            })
        }
        IdleProto::H2 => {
            let (sender, driver) = crate::grpc::connect(setup).await?;
            crate::grpc::empty_call(setup, &sender).await?;
            Ok(Held {
                driver,
                _sender: Box::new(sender),
            })
        }
    }
}

/// The idle scenario: opens `--idle-connections` (`--concurrency` at a time), holds them for
/// `--hold` while sampling the watched processes' memory, and reports memory per connection
/// as (RSS at the end of the hold − RSS before opening) / connections still open.
pub async fn run(setup: &Arc<Setup>, args: &RunArgs, watch: &Watch) -> Result<Value, Error> {
    let wanted = args.idle_connections;
    let parallel = args.concurrency.max(1);
    let before = watch.sample();
    let started = Instant::now();
    let mut recorder = Recorder::new();
    let mut held = Vec::with_capacity(wanted);
    let mut opening = JoinSet::new();
    let mut launched = 0;
    while launched < wanted || !opening.is_empty() {
        while launched < wanted && opening.len() < parallel {
            let setup = setup.clone();
            opening.spawn(async move {
                let began = Instant::now();
                let opened = tokio::time::timeout(setup.timeout, open_one(&setup)).await;
                (began, opened)
            });
            launched += 1;
        }
        match opening.join_next().await {
            Some(Ok((began, Ok(Ok(connection))))) => {
                recorder.ok(began.elapsed(), 1);
                held.push(connection);
            }
            Some(Ok((_, Ok(Err(kind))))) => recorder.error(kind),
            Some(Ok((_, Err(_)))) => recorder.error("timeout".to_owned()),
            Some(Err(_)) => recorder.error("task".to_owned()),
            None => break,
        }
    }
    let open_time = started.elapsed();
    eprintln!(
        "loadgen: holding {} idle connections for {:?}",
        held.len(),
        args.hold
    );
    let hold_end = Instant::now() + args.hold;
    let mut held_sample = watch.sample();
    let mut peak_rss = held_sample.rss_kib;
    while Instant::now() < hold_end {
        tokio::time::sleep(SAMPLE_EVERY.min(hold_end - Instant::now())).await;
        held_sample = watch.sample();
        peak_rss = peak_rss.max(held_sample.rss_kib);
    }
    let still_open = held.iter().filter(|c| !c.driver.is_finished()).count();
    for _ in still_open..held.len() {
        recorder.error("closed_while_idle".to_owned());
    }
    drop(held);

    let mut results = recorder.to_json(open_time);
    if let Value::Object(fields) = &mut results {
        let grown_bytes = held_sample.rss_kib.saturating_sub(before.rss_kib) * 1024;
        fields.insert(
            "idle".to_owned(),
            json!({
                "proto": match setup.idle_proto { IdleProto::H1 => "h1", IdleProto::H2 => "h2" },
                "requested": wanted,
                "open_after_hold": still_open,
                "open_s": open_time.as_secs_f64(),
                "hold_s": args.hold.as_secs_f64(),
                "rss_before_kib": before.rss_kib,
                "rss_held_kib": held_sample.rss_kib,
                "rss_peak_kib": peak_rss,
                "bytes_per_connection": if still_open == 0 || watch.is_empty() {
                    Value::Null
                } else {
                    json!(grown_bytes as f64 / still_open as f64)
                },
            }),
        );
        fields.insert(
            "settings".to_owned(),
            json!({ "concurrency": parallel, "connections": wanted }),
        );
        if !watch.is_empty() {
            fields.insert(
                "proxy".to_owned(),
                json!({
                    "pids": args.watch_pid,
                    "processes": held_sample.processes,
                    "cpu_s": held_sample.cpu_seconds_since(&before),
                    "peak_rss_kib": held_sample.hwm_kib,
                    "rss_kib": held_sample.rss_kib,
                }),
            );
        }
    }
    Ok(results)
}
