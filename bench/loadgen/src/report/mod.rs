//! `loadgen report`: reads the JSON lines of a benchmark run and writes one Markdown table
//! per scenario (with ratios to the direct path and to the best peer), a check of the goals
//! set for sekisho, and a PNG chart.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::cli::{ReportArgs, key_value};

mod chart;

/// The row of the load without a proxy.
pub const DIRECT: &str = "direct";
/// The gateway under test.
pub const SEKISHO: &str = "sekisho";
/// The gateway with the OWASP Core Rule Set, and the WAF it is measured against: nginx with
/// ModSecurity running the same rules.
pub const SEKISHO_WAF: &str = "sekisho-waf";
pub const NGINX_MODSEC: &str = "nginx-modsec";
/// What sekisho-waf should reach in gRPC calls per second against nginx-modsec.
const WAF_GOAL: f64 = 5.0;

/// One `loadgen run` result, labelled by the run script's tags.
pub struct Row {
    pub proxy: String,
    pub json: Value,
}

impl Row {
    fn number(&self, path: &[&str]) -> Option<f64> {
        path.iter()
            .try_fold(&self.json, |value, key| value.get(key))
            .and_then(Value::as_f64)
    }

    /// Successful requests per second (messages per second for streams).
    pub fn throughput(&self) -> Option<f64> {
        if self.json.get("mode").and_then(Value::as_str) == Some("grpc-stream") {
            self.number(&["mps"])
        } else {
            self.number(&["rps"])
        }
    }

    pub fn latency(&self, quantile: &str) -> Option<f64> {
        self.number(&["latency_us", quantile])
    }

    pub fn errors(&self) -> u64 {
        self.number(&["errors"]).map_or(0, |n| n as u64)
    }

    pub fn bytes_per_connection(&self) -> Option<f64> {
        self.number(&["idle", "bytes_per_connection"])
    }

    fn errors_text(&self) -> String {
        let total = self.errors();
        let Some(Value::Object(kinds)) = self.json.get("errors_by_kind") else {
            return total.to_string();
        };
        if total == 0 {
            return "0".to_owned();
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{total} ({})", kinds.join(", "))
    }
}

/// The kind of table a scenario gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Closed loop: throughput is what counts.
    Throughput,
    /// Open loop at a fixed rate: latency added to the direct path is what counts.
    FixedRate,
    /// Idle connections: memory per connection is what counts.
    Idle,
}

/// All runs of one scenario, in the order the proxies ran.
pub struct Scenario {
    pub name: String,
    pub title: String,
    pub kind: Kind,
    pub rows: Vec<Row>,
}

impl Scenario {
    pub fn row(&self, proxy: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.proxy == proxy)
    }

    /// The best peer (not direct, not sekisho in any setting): highest throughput, or least
    /// memory per connection for idle; peers with errors still count, their errors are in
    /// the table.
    pub fn best_peer(&self) -> Option<&Row> {
        let peers = self
            .rows
            .iter()
            .filter(|r| r.proxy != DIRECT && !r.proxy.starts_with(SEKISHO));
        match self.kind {
            Kind::Idle => peers
                .filter(|r| r.bytes_per_connection().is_some())
                .min_by(|a, b| cmp(a.bytes_per_connection(), b.bytes_per_connection())),
            Kind::Throughput => peers.max_by(|a, b| cmp(a.throughput(), b.throughput())),
            Kind::FixedRate => peers
                .filter(|r| r.latency("p50").is_some())
                .min_by(|a, b| cmp(a.latency("p50"), b.latency("p50"))),
        }
    }

    /// The unit of the throughput column.
    pub fn unit(&self) -> &'static str {
        match self.rows.first().and_then(|r| r.json.get("mode")?.as_str()) {
            Some("grpc-stream") => "msg/s",
            Some("grpc-bidi") => "calls/s",
            Some("tls-handshake") => "handshakes/s",
            _ => "req/s",
        }
    }
}

fn cmp(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    a.unwrap_or(f64::NAN).total_cmp(&b.unwrap_or(f64::NAN))
}

/// Reads the JSON lines into scenarios, in the order they first appear.
pub fn load(text: &str) -> Result<Vec<Scenario>, Error> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let json: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let tag = |key: &str| {
            json.get("tags")
                .and_then(|t| t.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let name =
            tag("scenario").ok_or_else(|| format!("line {}: no scenario tag", number + 1))?;
        let proxy = tag("proxy").ok_or_else(|| format!("line {}: no proxy tag", number + 1))?;
        let title = tag("title").unwrap_or_else(|| name.clone());
        let kind = if json.get("mode").and_then(Value::as_str) == Some("idle") {
            Kind::Idle
        } else if json
            .get("settings")
            .and_then(|s| s.get("rate"))
            .is_some_and(|r| !r.is_null())
        {
            Kind::FixedRate
        } else {
            Kind::Throughput
        };
        let index = match scenarios.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                scenarios.push(Scenario {
                    name,
                    title,
                    kind,
                    rows: Vec::new(),
                });
                scenarios.len() - 1
            }
        };
        let scenario = &mut scenarios[index];
        // A repeated run of the same proxy replaces the earlier one.
        scenario.rows.retain(|r| r.proxy != proxy);
        scenario.rows.push(Row { proxy, json });
    }
    Ok(scenarios)
}

/// `loadgen report`.
pub fn write(args: &ReportArgs) -> Result<(), Error> {
    let text = std::fs::read_to_string(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    let scenarios = load(&text)?;
    if scenarios.is_empty() {
        return Err(format!("{} holds no results", args.input.display()).into());
    }
    let mut meta = Vec::new();
    for pair in &args.meta {
        let (key, value) = key_value(pair)?;
        meta.push((key.to_owned(), value.to_owned()));
    }
    let markdown = markdown(&scenarios, &meta, &Machine::read());
    for path in &args.markdown {
        std::fs::write(path, &markdown)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.markdown.is_empty() {
        print!("{markdown}");
    }
    if let Some(png) = &args.png {
        chart::draw(&scenarios, &args.font, png)?;
    }
    Ok(())
}

/// The machine the run was made on.
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        Machine { cpu, cpus, kernel }
    }
}

/// Thousands separated by commas: 12,345.
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "–".to_owned())
}

fn micros(value: Option<f64>) -> String {
    or_dash(value.map(grouped))
}

fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}×", v / b),
        _ => "–".to_owned(),
    }
}

fn mib(kib: Option<f64>) -> String {
    or_dash(kib.map(|k| format!("{:.1} MiB", k / 1024.0)))
}

fn kib_per_connection(bytes: Option<f64>) -> String {
    or_dash(bytes.map(|b| format!("{:.1} KiB", b / 1024.0)))
}

fn cpu_per_request(row: &Row) -> Option<f64> {
    let cpu = row.number(&["proxy", "cpu_s"])?;
    let requests = row.number(&["ok"])?;
    (requests > 0.0).then(|| cpu * 1e6 / requests)
}

/// The whole Markdown report.
pub fn markdown(scenarios: &[Scenario], meta: &[(String, String)], machine: &Machine) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# sekisho benchmark results\n");
    let _ = writeln!(
        md,
        "Machine: {}, {} CPU{}, Linux {}.",
        machine.cpu,
        machine.cpus,
        if machine.cpus == 1 { "" } else { "s" },
        machine.kernel
    );
    for (key, value) in meta {
        let _ = writeln!(md, "{key}: {value}.");
    }
    let _ = writeln!(
        md,
        "\nLatencies in microseconds. CPU s: CPU time of the proxy (all its processes and \
         threads) during the measured window; CPU µs/req divides it by the requests. Peak RSS: \
         the proxy's VmHWM summed over its processes. The `direct` row has no proxy: its CPU \
         and memory columns are the backend's. Ratios compare req/s (msg/s for streams)."
    );
    let disturbed = scenarios
        .iter()
        .flat_map(|s| &s.rows)
        .filter_map(|r| {
            let other = r.number(&["machine", "other_s"])?;
            let duration = r.number(&["settings", "duration_s"])?;
            (duration > 0.0).then_some(other / duration)
        })
        .fold(0.0f64, f64::max);
    if disturbed > 0.1 {
        let _ = writeln!(
            md,
            "\n**Warning:** other processes on the machine used up to {:.0}% of a CPU during \
             some runs (see \"other processes\" under each table); those numbers are disturbed.",
            disturbed * 100.0
        );
    }
    goals(&mut md, scenarios);
    for scenario in scenarios {
        let _ = writeln!(md, "\n## {}\n", scenario.title);
        match scenario.kind {
            Kind::Throughput => {
                throughput_table(&mut md, scenario);
                waf_line(&mut md, scenario);
                busy_line(&mut md, scenario);
            }
            Kind::FixedRate => {
                fixed_rate_table(&mut md, scenario);
                busy_line(&mut md, scenario);
            }
            Kind::Idle => idle_table(&mut md, scenario),
        }
    }
    md
}

fn throughput_table(md: &mut String, scenario: &Scenario) {
    let direct = scenario.row(DIRECT).and_then(Row::throughput);
    let best = scenario.best_peer();
    let _ = writeln!(
        md,
        "| proxy | {} | p50 | p99 | p99.9 | CPU s | CPU µs/req | peak RSS | errors | vs direct | vs best peer{} |",
        scenario.unit(),
        best.map(|b| format!(" ({})", b.proxy)).unwrap_or_default()
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in &scenario.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.proxy,
            or_dash(row.throughput().map(grouped)),
            micros(row.latency("p50")),
            micros(row.latency("p99")),
            micros(row.latency("p999")),
            or_dash(row.number(&["proxy", "cpu_s"]).map(|c| format!("{c:.2}"))),
            or_dash(cpu_per_request(row).map(|c| format!("{c:.1}"))),
            mib(row.number(&["proxy", "peak_rss_kib"])),
            row.errors_text(),
            if row.proxy == DIRECT {
                "1.00×".to_owned()
            } else {
                ratio(row.throughput(), direct)
            },
            ratio(row.throughput(), best.and_then(Row::throughput)),
        );
    }
}

/// sekisho-waf against nginx-modsec, where both ran: the comparison the WAF rows are for.
fn waf_line(md: &mut String, scenario: &Scenario) {
    let (Some(ours), Some(theirs)) = (scenario.row(SEKISHO_WAF), scenario.row(NGINX_MODSEC)) else {
        return;
    };
    if theirs.throughput().is_none_or(|t| t <= 0.0) {
        let _ = writeln!(
            md,
            "\nWith the same Core Rule Set, {NGINX_MODSEC} completed nothing (errors: {}); \
             {SEKISHO_WAF}: {} {} (errors: {}).",
            theirs.errors_text(),
            or_dash(ours.throughput().map(grouped)),
            scenario.unit(),
            ours.errors_text()
        );
        return;
    }
    let mut parts = vec![format!(
        "{} {}",
        ratio(ours.throughput(), theirs.throughput()),
        scenario.unit()
    )];
    if let (Some(a), Some(b)) = (cpu_per_request(ours), cpu_per_request(theirs)) {
        parts.push(format!("{:.2}× the CPU per request", a / b));
    }
    for quantile in ["p50", "p99"] {
        if let (Some(a), Some(b)) = (ours.latency(quantile), theirs.latency(quantile)) {
            parts.push(format!(
                "{quantile} {} µs against {} µs",
                grouped(a),
                grouped(b)
            ));
        }
    }
    let _ = writeln!(
        md,
        "
With the same Core Rule Set, {SEKISHO_WAF} against {NGINX_MODSEC}: {}.",
        parts.join(", ")
    );
}

/// How busy the proxy and the load generator with the backend were, as shares of one CPU:
/// a proxy well below 100% while the other side is near its limit was not what limited the
/// throughput.
fn busy_line(md: &mut String, scenario: &Scenario) {
    let share = |row: &Row, cpu: Option<f64>| {
        let duration = row.number(&["settings", "duration_s"])?;
        let cpu = cpu?;
        (duration > 0.0).then(|| format!("{} {:.0}%", row.proxy, cpu * 100.0 / duration))
    };
    let proxies: Vec<String> = scenario
        .rows
        .iter()
        .filter(|r| r.proxy != DIRECT)
        .filter_map(|r| share(r, r.number(&["proxy", "cpu_s"])))
        .collect();
    let load: Vec<String> = scenario
        .rows
        .iter()
        .filter_map(|r| {
            let generator = r.number(&["generator", "cpu_s"])?;
            share(
                r,
                Some(generator + r.number(&["backend", "cpu_s"]).unwrap_or(0.0)),
            )
        })
        .collect();
    let other: Vec<String> = scenario
        .rows
        .iter()
        .filter_map(|r| share(r, r.number(&["machine", "other_s"])))
        .collect();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "–".to_owned()
        } else {
            items.join(", ")
        }
    };
    if !proxies.is_empty() || !load.is_empty() {
        let _ = writeln!(
            md,
            "\nCPU busy (share of one CPU): proxy — {}; load generator + backend — {}; \
             other processes — {}.",
            list(proxies),
            list(load),
            list(other),
        );
    }
}

fn fixed_rate_table(md: &mut String, scenario: &Scenario) {
    let direct = scenario.row(DIRECT).and_then(|r| r.latency("p50"));
    let _ = writeln!(
        md,
        "| proxy | req/s | p50 | p50 added to direct | p90 | p99 | p99.9 | CPU s | CPU µs/req | peak RSS | errors |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in &scenario.rows {
        let added = match (row.latency("p50"), direct) {
            (Some(p50), Some(direct)) if row.proxy != DIRECT => {
                Some(format!("{:+.0}", p50 - direct))
            }
            _ => None,
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.proxy,
            or_dash(row.throughput().map(grouped)),
            micros(row.latency("p50")),
            or_dash(added),
            micros(row.latency("p90")),
            micros(row.latency("p99")),
            micros(row.latency("p999")),
            or_dash(row.number(&["proxy", "cpu_s"]).map(|c| format!("{c:.2}"))),
            or_dash(cpu_per_request(row).map(|c| format!("{c:.1}"))),
            mib(row.number(&["proxy", "peak_rss_kib"])),
            row.errors_text(),
        );
    }
}

fn idle_table(md: &mut String, scenario: &Scenario) {
    let best = scenario.best_peer();
    let _ = writeln!(
        md,
        "| proxy | connections held | RSS before | RSS held | per connection | peak RSS | errors | vs best peer{} |",
        best.map(|b| format!(" ({})", b.proxy)).unwrap_or_default()
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|");
    for row in &scenario.rows {
        let held = match (
            row.number(&["idle", "open_after_hold"]),
            row.number(&["idle", "requested"]),
        ) {
            (Some(open), Some(requested)) => Some(format!("{open:.0} / {requested:.0}")),
            _ => None,
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.proxy,
            or_dash(held),
            mib(row.number(&["idle", "rss_before_kib"])),
            mib(row.number(&["idle", "rss_held_kib"])),
            kib_per_connection(row.bytes_per_connection()),
            mib(row.number(&["proxy", "peak_rss_kib"])),
            row.errors_text(),
            // Memory: below 1.00× means less than the best peer.
            ratio(
                row.bytes_per_connection(),
                best.and_then(Row::bytes_per_connection)
            ),
        );
    }
    let _ = writeln!(
        md,
        "\nper connection = (RSS held − RSS before) / connections held; vs best peer below \
         1.00× means less memory than the best peer."
    );
}

/// The benchmark goals, checked where the scenarios they need were run.
fn goals(md: &mut String, scenarios: &[Scenario]) {
    let find = |name: &str| scenarios.iter().find(|s| s.name == name);
    let mut lines: Vec<(String, String, String, bool)> = Vec::new();
    if let Some(s) = find("grpc-unary-64")
        && let (Some(ours), Some(best)) = (s.row(SEKISHO), s.best_peer())
        && let (Some(our_rps), Some(best_rps)) = (ours.throughput(), best.throughput())
    {
        let x = our_rps / best_rps;
        lines.push((
            "gRPC unary 64 B: req/s vs best peer".to_owned(),
            "≥ 1.20×".to_owned(),
            format!("{x:.2}× ({})", best.proxy),
            x >= 1.2,
        ));
        if let (Some(ours), Some(theirs)) = (ours.latency("p99"), best.latency("p99")) {
            lines.push((
                "gRPC unary 64 B: p99 vs best peer".to_owned(),
                format!("≤ {}", grouped(theirs)),
                grouped(ours),
                ours <= theirs,
            ));
        }
    }
    if let Some(s) = find("grpc-unary-64-rate")
        && let (Some(ours), Some(direct)) = (
            s.row(SEKISHO).and_then(|r| r.latency("p50")),
            s.row(DIRECT).and_then(|r| r.latency("p50")),
        )
    {
        let added = ours - direct;
        lines.push((
            "fixed rate: p50 added to direct (µs)".to_owned(),
            "< 100".to_owned(),
            format!("{added:+.0}"),
            added < 100.0,
        ));
    }
    for (name, limit) in [("idle-h2", 16.0), ("idle-h1", 4.0)] {
        if let Some(bytes) = find(name)
            .and_then(|s| s.row(SEKISHO))
            .and_then(Row::bytes_per_connection)
        {
            lines.push((
                format!("{name}: memory per connection"),
                format!("< {limit:.0} KiB"),
                format!("{:.1} KiB", bytes / 1024.0),
                bytes < limit * 1024.0,
            ));
        }
    }
    if let Some(s) = find("grpc-unary-64")
        && let (Some(ours), Some(theirs)) = (
            s.row(SEKISHO_WAF).and_then(Row::throughput),
            s.row(NGINX_MODSEC).and_then(Row::throughput),
        )
        && theirs > 0.0
    {
        let x = ours / theirs;
        lines.push((
            format!("gRPC unary 64 B with the WAF: req/s vs {NGINX_MODSEC}"),
            format!("≥ {WAF_GOAL:.2}×"),
            format!("{x:.2}×"),
            x >= WAF_GOAL,
        ));
    }
    if let Some(row) = find("grpc-bidi").and_then(|s| s.row(SEKISHO_WAF)) {
        let ok = row.number(&["ok"]).unwrap_or(0.0);
        lines.push((
            "bidirectional streaming with the WAF: calls failed (each echo before the next message)"
                .to_owned(),
            "0, and some calls".to_owned(),
            format!("{} of {}", row.errors_text(), grouped(ok + row.errors() as f64)),
            row.errors() == 0 && ok > 0.0,
        ));
    }
    let errors: u64 = scenarios
        .iter()
        .filter_map(|s| s.row(SEKISHO))
        .map(Row::errors)
        .sum();
    if scenarios.iter().any(|s| s.row(SEKISHO).is_some()) {
        lines.push((
            "errors in any scenario".to_owned(),
            "0".to_owned(),
            errors.to_string(),
            errors == 0,
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Goals for sekisho\n");
    let _ = writeln!(md, "| goal | target | sekisho | met |");
    let _ = writeln!(md, "|---|--:|--:|:-:|");
    for (goal, target, value, met) in lines {
        let _ = writeln!(
            md,
            "| {goal} | {target} | {value} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
}

/// Reads a font file for the chart, kept for the life of the process as plotters needs.
pub fn leak_font(path: &Path) -> Result<&'static [u8], Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the chart font {} (Debian: fonts-dejavu-core): {e}",
            path.display()
        )
    })?;
    Ok(Box::leak(bytes.into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn proxies(scenarios: &[Scenario]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for s in scenarios {
            for r in &s.rows {
                *counts.entry(r.proxy.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn line(scenario: &str, proxy: &str, rps: f64, p50: u64, extra: &str) -> String {
        format!(
            r#"{{"mode":"grpc-unary","tags":{{"scenario":"{scenario}","proxy":"{proxy}"}},"ok":1000,"errors":0,"errors_by_kind":{{}},"rps":{rps},"latency_us":{{"p50":{p50},"p90":1,"p99":{p50},"p999":1,"max":1}}{extra}}}"#
        )
    }

    #[test]
    fn ratios_and_goals() {
        let text = [
            line("grpc-unary-64", "direct", 1000.0, 100, ""),
            line("grpc-unary-64", "sekisho", 900.0, 150, ""),
            line("grpc-unary-64", "nginx", 600.0, 200, ""),
            line("grpc-unary-64", "haproxy", 700.0, 180, ""),
            line(
                "grpc-unary-64-rate",
                "direct",
                2000.0,
                100,
                r#","settings":{"rate":2000.0}"#,
            ),
            line(
                "grpc-unary-64-rate",
                "sekisho",
                2000.0,
                160,
                r#","settings":{"rate":2000.0}"#,
            ),
        ]
        .join("\n");
        let scenarios = load(&text).expect("valid lines");
        assert_eq!(scenarios.len(), 2);
        assert_eq!(proxies(&scenarios).get("direct"), Some(&2));
        let unary = &scenarios[0];
        assert_eq!(unary.best_peer().map(|r| r.proxy.as_str()), Some("haproxy"));
        assert!(scenarios[1].kind == Kind::FixedRate);
        let machine = Machine {
            cpu: "test CPU".to_owned(),
            cpus: 2,
            kernel: "6.1".to_owned(),
        };
        let md = markdown(&scenarios, &[], &machine);
        assert!(md.contains("| sekisho | 900 | 150 |"), "{md}");
        assert!(md.contains("| 0.90× | 1.29× |"), "{md}");
        assert!(md.contains("| +60 |"), "{md}");
        assert!(
            md.contains(
                "| gRPC unary 64 B: req/s vs best peer | ≥ 1.20× | 1.29× (haproxy) | yes |"
            ),
            "{md}"
        );
    }

    #[test]
    fn waf_pair() {
        let cpu = |seconds: f64| format!(r#","proxy":{{"cpu_s":{seconds}}}"#);
        let bidi = r#"{"mode":"grpc-bidi","tags":{"scenario":"grpc-bidi","proxy":"nginx-modsec"},"ok":0,"errors":48,"errors_by_kind":{"held_until_close":48},"rps":0.0,"latency_us":{}}"#;
        let text = [
            line("grpc-unary-64", "sekisho-waf", 6000.0, 900, &cpu(0.5)),
            line("grpc-unary-64", "nginx-modsec", 1000.0, 5000, &cpu(1.0)),
            line("grpc-unary-64", "nginx", 9000.0, 700, &cpu(0.25)),
            line("grpc-bidi", "sekisho-waf", 400.0, 2000, "").replace("grpc-unary", "grpc-bidi"),
            bidi.to_owned(),
        ]
        .join("\n");
        let scenarios = load(&text).expect("valid lines");
        // sekisho-waf is ours, never the peer to beat.
        assert_eq!(
            scenarios[0].best_peer().map(|r| r.proxy.as_str()),
            Some("nginx")
        );
        let machine = Machine {
            cpu: "test CPU".to_owned(),
            cpus: 2,
            kernel: "6.1".to_owned(),
        };
        let md = markdown(&scenarios, &[], &machine);
        assert!(
            md.contains(
                "sekisho-waf against nginx-modsec: 6.00× req/s, 0.50× the CPU per request, \
                 p50 900 µs against 5,000 µs"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| gRPC unary 64 B with the WAF: req/s vs nginx-modsec | ≥ 5.00× | 6.00× | yes |"
            ),
            "{md}"
        );
        assert!(md.contains("| 0 of 1,000 | yes |"), "{md}");
        assert!(md.contains("| 48 (held_until_close: 48) |"), "{md}");
        assert!(md.contains("| proxy | calls/s |"), "{md}");
        assert!(
            md.contains(
                "nginx-modsec completed nothing (errors: 48 (held_until_close: 48)); \
                 sekisho-waf: 400 calls/s (errors: 0)."
            ),
            "{md}"
        );
    }

    #[test]
    fn thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1234.0), "1,234");
        assert_eq!(grouped(1234567.0), "1,234,567");
    }
}
