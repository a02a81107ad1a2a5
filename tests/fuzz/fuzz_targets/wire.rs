//! Arbitrary bytes through the whole conversation: framing, the JSON-RPC envelope, the method
//! table and a real (temporary) redb database, exactly as a TCP or stdio peer would drive them.
//!
//! The first input byte picks how the conversation is run (see [`Mode`]); the rest is what the
//! peer sends, delivered in chunks of the chosen size, sometimes with a "nothing yet" between
//! chunks. Besides "never panics", every run checks what the peer got back: each answer is a
//! well-formed JSON-RPC 2.0 response in the server's framing, and there are never more answers
//! than requests.

#![no_main]

use std::sync::OnceLock;

use groupd::connection;
use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::storage;
use libfuzzer_sys::fuzz_target;
use tokio_util::sync::CancellationToken;
use wire::{Mode, answers, check_answer, content_length_framed};

#[path = "../../support/wire.rs"]
mod wire;

/// Small limits, so that inputs of a few hundred bytes reach them.
const LIMITS: Limits = Limits {
    max_line_bytes: 512,
    max_batch: 8,
    max_connections: 1,
    idle_timeout: None,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let mode = Mode::from(mode);
    // A fresh database for every input keeps runs independent, so a finding replays alone.
    // It lives in memory-backed /dev/shm when there is one, where a commit's fsync is free.
    let dir = scratch_dir();
    let store = storage::open(&dir.path().join("fuzz.redb")).expect("open a scratch database");
    let service = Service::new(store, LIMITS);
    let reader = mode.peer(input);
    let mut out = Vec::new();
    let end = runtime().block_on(connection::serve(
        reader,
        &mut out,
        &service,
        mode.session(),
        None,
        &CancellationToken::new(),
    ));
    assert!(end.is_ok(), "serve failed: {end:?}");
    check_answers(input, &out);
});

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.expect("a scratch directory")
}

/// Everything the peer got back must be well-formed answers, no more than it sent requests.
fn check_answers(input: &[u8], out: &[u8]) {
    let answers = answers(input, out);
    if !content_length_framed(input) {
        let requests = input.split(|&b| b == b'\n').count();
        assert!(
            answers.len() <= requests,
            "{} answers to at most {requests} request lines",
            answers.len()
        );
    }
    for answer in &answers {
        check_answer(answer);
    }
}
