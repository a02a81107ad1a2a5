//! A create load through one `PgStore` for scripts/patroni-failover.sh: `CLIENTS` callers
//! create groups until `STOP_FILE` exists (or `SECONDS` have passed), then the same store
//! reads back every create it acknowledged. Prints the outage (from the first failed call to
//! the next success) and the check; exits 1 when an acknowledged create is missing.
//!
//! `cargo run --release --example pg_failover_load -- URL STOP_FILE [SECONDS] [CLIENTS]`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use groupd::group::{WriteOp, WriteOutcome};
use groupd::storage::postgres::PgStore;

/// Calls that failed, and when: the first after a success, and the success that ended it.
#[derive(Default)]
struct Outages {
    down_since: Option<Instant>,
    longest: Duration,
    errors: u64,
    unknown: u64,
}

/// Records one call's success or failure; whether it failed.
fn note(
    outages: &Mutex<Outages>,
    started: Instant,
    written: &Result<Vec<WriteOutcome>, groupd::storage::postgres::PgError>,
) -> Result<bool, String> {
    let mut o = outages.lock().map_err(|_| "poisoned")?;
    let at = started.elapsed().as_secs_f64();
    match written {
        Ok(_) => {
            if let Some(since) = o.down_since.take() {
                let gap = since.elapsed();
                eprintln!("[{at:>6.2}s] service back after {gap:.2?} of errors");
                o.longest = o.longest.max(gap);
            }
            Ok(false)
        }
        Err(e) => {
            o.errors += 1;
            if matches!(e, groupd::storage::postgres::PgError::OutcomeUnknown(_)) {
                o.unknown += 1;
            }
            if o.down_since.is_none() {
                eprintln!("[{at:>6.2}s] first error: {e}");
                o.down_since = Some(Instant::now());
            }
            Ok(true)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let args: Vec<String> = std::env::args().collect();
    let [_, url, stop_file, rest @ ..] = args.as_slice() else {
        return Err("usage: pg_failover_load URL STOP_FILE [SECONDS] [CLIENTS]".into());
    };
    let seconds: u64 = rest.first().map_or(Ok(120), |s| s.parse())?;
    let clients: usize = rest.get(1).map_or(Ok(16), |s| s.parse())?;
    let store = Arc::new(PgStore::connect(url, Duration::from_secs(30)).await?);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let outages = Arc::new(Mutex::new(Outages::default()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (store, stop, outages) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&outages));
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("failover {} {c} {i}", std::process::id());
                i += 1;
                let op = WriteOp::Create {
                    name: name.clone(),
                    external_id: String::new(),
                };
                let written = store.write(vec![op]).await;
                let failed = note(&outages, started, &written)?;
                match written.as_deref() {
                    Ok([WriteOutcome::Created(id)]) => acked.push((*id, name)),
                    Ok(other) => return Err(format!("unexpected outcome {other:?}")),
                    Err(_) => {}
                }
                if failed {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok::<_, String>(acked)
        }));
    }
    while !std::path::Path::new(stop_file).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await??);
    }
    let (longest, errors, unknown) = {
        let o = outages.lock().map_err(|_| "poisoned")?;
        (o.longest, o.errors, o.unknown)
    };
    println!(
        "load: {} creates acknowledged in {:.1?}, {errors} calls failed ({unknown} outcome unknown), \
         longest outage {longest:.2?}",
        acked.len(),
        started.elapsed()
    );
    let mut missing = 0;
    for chunk in acked.chunks(1000) {
        let ids: Vec<u64> = chunk.iter().map(|(id, _)| *id).collect();
        let found = store.get_many(&ids).await?;
        for ((id, name), group) in chunk.iter().zip(found) {
            if group.as_ref().map(|g| &g.name) != Some(name) {
                eprintln!("LOST: acknowledged create of {name:?} as id {id}");
                missing += 1;
            }
        }
    }
    println!(
        "check: {} acknowledged creates read back after the failover, {missing} missing",
        acked.len()
    );
    if missing > 0 {
        std::process::exit(1);
    }
    Ok(())
}
