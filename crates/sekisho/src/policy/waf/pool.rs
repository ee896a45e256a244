//! Threads that inspect large request bodies at the lowest CPU priority.
//!
//! Inspecting a body costs CPU in proportion to what it holds, and one client can send
//! costly bodies as fast as they are answered. Run on the runtime's threads, that work
//! delays every other request queued behind it. Here it runs on threads of its own with
//! the lowest scheduling priority (nice 19): when the runtime has work, the kernel runs the
//! runtime first, so a flood of costly bodies slows only other inspections, and requests
//! that need none keep their latency. Small bodies are inspected in place: handing them
//! over would cost more than inspecting them.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

use crate::observe::metrics;

/// Bodies up to this long are inspected on the runtime's thread.
pub const INLINE_BYTES: usize = 16 * 1024;

/// Inspections that may wait for a thread; past it, a body is inspected in place (the
/// queue is a latency bound, not a memory one: each waiting body is already read).
const QUEUE: usize = 4096;

type Job = Box<dyn FnOnce() + Send>;

/// The process's inspection threads, one per CPU, started on first use.
struct Pool {
    jobs: SyncSender<Job>,
}

fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(start).as_ref()
}

fn start() -> Option<Pool> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (jobs, queue) = sync_channel::<Job>(QUEUE);
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for n in 0..threads {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sekisho-waf-{n}"))
            .spawn(move || work(&queue));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "cannot start a WAF inspection thread"),
        }
    }
    (started > 0).then_some(Pool { jobs })
}

fn work(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // Jobs catch their own panics; the lock is taken even if one was poisoned.
        let job = match queue.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        metrics::waf_inspections_queued(-1.0);
        job();
    }
}

/// Nice 19 for the calling thread: on Linux a thread's nice value is its own.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(thread), 19) {
            tracing::warn!(error = %e, "cannot lower the priority of a WAF inspection thread");
        }
    }
}

/// Runs `inspect` on an inspection thread and waits for its answer without holding the
/// runtime's thread; in place when the pool is missing or full. A panic in `inspect`
/// resumes here, as if it had run in place.
pub async fn run<T: Send + 'static>(inspect: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(inspect)));
    });
    let sent = match pool() {
        Some(pool) => pool.jobs.try_send(job),
        None => Err(TrySendError::Disconnected(job)),
    };
    match sent {
        Ok(()) => metrics::waf_inspections_queued(1.0),
        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
            metrics::waf_inspections_inline();
            job();
        }
    }
    match rx.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // Jobs catch their panics, so a thread never stops with jobs queued.
        Err(_) => panic!("a WAF inspection was dropped unrun"),
    }
}
