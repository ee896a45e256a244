//! The `sekisho` command: run the gateway, check a config, or make a test certificate.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// jemalloc, not glibc's malloc: 3–9% fewer instructions per proxied request, for about 6%
/// more memory per idle HTTP/2 connection (docs/architecture.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it starts (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them). A multiplexed connection allocates and frees its streams in
/// batches of hundreds: with the defaults, the thread cache holds 20 blocks of a size
/// and is trimmed every 64 KiB allocated, so each batch went back to the arena and came
/// out of it again, about a tenth of a request's instructions. 64 blocks and a trim every
/// MiB: 2–3% fewer instructions per request (docs/architecture.md), for at most 3.8 MiB
/// more held per worker thread (44 more blocks of each of the 36 small sizes, 88 KiB a set).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"tcache_gc_incr_bytes:1048576,tcache_nslots_small_min:64".as_ptr());

/// A C string for jemalloc to read.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` C string literal, which nothing ever writes to, so
// sharing it between threads can race with nothing.
unsafe impl Sync for MallocConf {}

/// An edge gateway for gRPC platforms.
#[derive(Parser)]
#[command(name = "sekisho", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the diagnostic log on stderr is written: `text` for people (coloured only on a
    /// terminal), `json` for log collectors (one JSON object per line). The access log is
    /// JSON lines either way.
    #[arg(
        long,
        global = true,
        env = "SEKISHO_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
}

/// The shape of the diagnostic log. Containers and log shippers read JSON; people read text.
#[derive(Clone, Copy, Default, ValueEnum)]
enum LogFormat {
    /// One line per event for people; ANSI colours only when stderr is a terminal and
    /// `NO_COLOR` is unset, so files and container logs stay plain.
    #[default]
    Text,
    /// One flat JSON object per line: `timestamp`, `level`, `target`, `message` and the
    /// event's fields at the top level, so collectors need no nested paths.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine: the gateway on https://localhost:8443 in front
    /// of ashi (SQLite, local scans), a demo account and the browser page. Ctrl-C stops it.
    #[cfg(feature = "up")]
    Up {
        /// Where the database, scans, keys, certificate and config are kept.
        #[arg(long, default_value = ".sekisho")]
        data: PathBuf,
        /// The gateway's public (TLS) address.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// The gateway's admin address (metrics, clusters).
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: std::net::SocketAddr,
    },
    /// Serve the config; reload it on change or SIGHUP; drain on SIGTERM or SIGINT.
    Run {
        /// The gateway config (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Worker threads; default: the CPUs this process may run on. With 1, the gateway
        /// runs on a single-threaded runtime, which is cheaper per request.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Check a config without serving it, with every team file its grants match: exit 0
    /// if all is good, 1 with every problem if not.
    Validate {
        /// The gateway config (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Check this team's files (`--files`) against the config in place of what its
        /// grant matches: what a team's CI runs before a change merges.
        #[arg(long, requires = "files")]
        team: Option<String>,
        /// With `--team`: the team's files.
        #[arg(long, num_args = 1.., requires = "team")]
        files: Vec<PathBuf>,
    },
    /// Write a self-signed certificate and key (HOST.crt, HOST.key) for trying things out.
    Cert {
        /// DNS name the certificate is for.
        #[arg(long, default_value = "localhost")]
        host: String,
        /// Directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.log_format);
    match cli.command {
        #[cfg(feature = "up")]
        Command::Up {
            data,
            listen,
            admin,
        } => match runtime(None) {
            Ok(runtime) => runtime.block_on(up(sekisho::up::Options {
                data,
                listen,
                admin,
            })),
            Err(e) => {
                eprintln!("cannot start the runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Validate {
            config,
            team,
            files,
        } => validate(&config, team.map(|team| (team, files))),
        Command::Cert { host, out } => match sekisho::cert::write_self_signed(&host, &out) {
            Ok((cert, key)) => {
                println!("wrote {} and {}", cert.display(), key.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config, workers } => {
            let runtime = match runtime(workers) {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(config))
        }
    }
}

/// Installs the diagnostic log on stderr (the access log is written apart, to stdout or its
/// file, and never passes through here, so `json` never wraps one JSON line in another).
fn init_log(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour(&std::io::stderr())).init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_span_list(false)
            .init(),
    }
}

/// Whether text written to `stream` may carry ANSI colours: only for a terminal, and not
/// when the user asked for none (`NO_COLOR`, https://no-color.org).
fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The async runtime: one thread per CPU the process may use, or a single-threaded
/// runtime when that is one (a container limited to one CPU, or `taskset` to one core).
fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = workers
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

fn validate(path: &std::path::Path, team_files: Option<(String, Vec<PathBuf>)>) -> ExitCode {
    let resolver: std::sync::Arc<dyn sekisho::upstream::discovery::Resolve> =
        std::sync::Arc::new(sekisho::upstream::discovery::SystemResolver);
    let config = match sekisho::config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((team, _)) = &team_files
        && !config.teams.iter().any(|g| *g.name.value == **team)
    {
        eprintln!("{}: no grant for team {team:?}", path.display());
        return ExitCode::FAILURE;
    }
    let options = sekisho::snapshot::CompileOptions {
        strict: true,
        team_files,
    };
    let doubts = sekisho::config::doubts(&config);
    let checked =
        sekisho::snapshot::Snapshot::compile_with(config, path, None, None, &resolver, &options)
            .map(|_| doubts);
    match checked {
        Ok(doubts) => {
            if !doubts.is_empty() {
                let doubts = sekisho::config::ConfigError {
                    file: path.to_owned(),
                    problems: doubts,
                };
                for line in doubts.to_string().lines() {
                    eprintln!("warning: {line}");
                }
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole system until SIGINT or SIGTERM.
#[cfg(feature = "up")]
async fn up(options: sekisho::up::Options) -> ExitCode {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let system = match sekisho::up::System::start(options).await {
        Ok(system) => system,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", system.banner);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("stopping: draining the gateway, then ashi");
    match system.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: PathBuf) -> ExitCode {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            eprintln!("cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let gateway = match sekisho::Gateway::start(&config).await {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => { let _ = gateway.reload().await; }
        }
    }
    gateway.shutdown().await;
    ExitCode::SUCCESS
}
