//! The database a test server runs on when `scripts/test.sh` makes its PostgreSQL pass: with
//! `GROUPD_TEST_POSTGRES=postgres://USER@HOST:PORT` set, every test server gets a new, empty
//! database of that server (made with psql, `GROUPD_TEST_PSQL` or `psql`); without it, `None`
//! and the test keeps its temporary file. Included with `#[path]`.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh database's URL on the PostgreSQL server named by `GROUPD_TEST_POSTGRES`, if any.
pub fn fresh_postgres_database() -> Option<String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = std::env::var("GROUPD_TEST_POSTGRES").ok()?;
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let psql = std::env::var("GROUPD_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let made = Command::new(psql)
        .args(["-X", "-q", "-d", &format!("{server}/postgres"), "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .expect("run psql");
    assert!(made.success(), "CREATE DATABASE {name} failed");
    Some(format!("{server}/{name}"))
}
