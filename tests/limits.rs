//! SPEC §6: every limit, and what the server does when a client goes over it. Memory is read
//! from `/proc/PID/status` of the server process: `VmRSS` before, `VmHWM` (the peak) after.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Db, SERVER_BUSY, Server, assert_line, check, stdio};

const MIB: u64 = 1024;

/// The most the server's resident memory may grow (in KiB) while one client misbehaves.
const MEMORY_BOUND_KIB: u64 = 16 * MIB;

const LIST: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;

/// `-32600` with id null and a `data` that names the limit (in one of the ways in `limit`).
#[track_caller]
fn assert_line_too_long(got: &str, limit: &[&str]) {
    assert_line(
        "(over-long line)",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request","data":…}}"#,
        got,
    );
    let data = &got[got.find(r#""data":"#).unwrap_or(0)..];
    assert!(
        limit.iter().any(|l| data.contains(l)),
        "the error's data should name the limit {limit:?}: {got}"
    );
}

/// Fails if the server's peak memory grew more than [`MEMORY_BOUND_KIB`] over `before_kib`.
#[track_caller]
fn assert_memory_bounded(server: &Server, before_kib: u64, what: &str) {
    let peak = server.memory_kib("VmHWM");
    let now = server.memory_kib("VmRSS");
    assert!(
        peak.saturating_sub(before_kib) < MEMORY_BOUND_KIB,
        "{what}: server memory grew from {before_kib} KiB to a peak of {peak} KiB (now {now} KiB)"
    );
}

#[test]
fn a_20_mib_line_is_refused_without_buffering_it() {
    let server = Server::start(&[]);
    let mut client = server.client();
    client.check(&[(LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#))]);
    let before = server.memory_kib("VmRSS");

    // 20 MiB of one createGroup line, and no newline yet.
    let mut stream = client.stream();
    stream.set_write_timeout(Some(common::DEADLINE)).unwrap();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        stream.write_all(br#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":[""#)?;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..320 {
            stream.write_all(&chunk)?;
        }
        Ok(())
    });
    // The refusal comes as soon as the limit is crossed, not when (if ever) the line ends.
    assert_line_too_long(&client.recv(), &["1048576", "1 MiB", "1MiB"]);
    // Meanwhile another connection is served.
    check(
        &server,
        &[(LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#))],
    );
    sender
        .join()
        .unwrap()
        .expect("the server keeps reading (and discarding) the over-long line");

    // The end of the line ends the discarding; the same connection then works as before.
    client.send_raw(b"\"]}\n");
    client.check(&[
        (LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#)),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["after"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":1}"#),
        ),
    ]);
    assert_memory_bounded(&server, before, "after a 20 MiB line");
    check(
        &server,
        &[(
            LIST,
            Some(
                r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"after"}]}"#,
            ),
        )],
    );
}

/// A getAllGroups request of exactly `len` bytes (`len` ≥ 50).
fn list_request_of(len: usize) -> String {
    let head = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":""#;
    let pad = len - head.len() - 2;
    let line = format!(r#"{head}{}"}}"#, "x".repeat(pad));
    assert_eq!(line.len(), len);
    line
}

#[test]
fn max_line_bytes_counts_bytes_without_the_line_ending() {
    let server = Server::start(&["--max-line-bytes", "64"]);
    let mut client = server.client();
    let at_limit = list_request_of(64);
    let id = &at_limit[47..62];
    let answer = format!(r#"{{"jsonrpc":"2.0","id":"{id}","result":[]}}"#);
    assert_line(&at_limit, &answer, &client.call(&at_limit));
    client.send_raw(format!("{at_limit}\r\n").as_bytes());
    assert_line(&at_limit, &answer, &client.recv());

    // One byte more, a multi-byte character that makes 65 bytes, and a long complete create.
    assert_line_too_long(&client.call(&list_request_of(65)), &["64"]);
    let with_e_acute = at_limit.replacen('x', "é", 1);
    assert_eq!(with_e_acute.len(), 65);
    assert_line_too_long(&client.call(&with_e_acute), &["64"]);
    let create = format!(
        r#"{{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["{}"]}}"#,
        "n".repeat(100)
    );
    assert_line_too_long(&client.call(&create), &["64"]);
    // A batch of small entries is one line too.
    let batch = format!("[{LIST},{LIST}]");
    assert_line_too_long(&client.call(&batch), &["64"]);

    // An over-long line and a good one in the same packet.
    client.send_raw(format!("{}\n{LIST}\n", list_request_of(200)).as_bytes());
    assert_line_too_long(&client.recv(), &["64"]);
    assert_eq!(
        client.recv(),
        r#"{"jsonrpc":"2.0","id":"list","result":[]}"#
    );

    // Connection kept; nothing was created.
    client.check(&[(LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#))]);
}

#[test]
fn max_line_bytes_applies_over_stdio_too() {
    let db = Db::new();
    let too_long = list_request_of(65);
    let answers = stdio(&db, &["--max-line-bytes", "64"], &[&too_long, LIST]);
    assert_eq!(answers.len(), 2, "{answers:#?}");
    assert_line_too_long(&answers[0], &["64"]);
    assert_eq!(answers[1], r#"{"jsonrpc":"2.0","id":"list","result":[]}"#);
}

#[test]
fn max_connections_refuses_the_next_one_with_server_busy() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut first = server.client();
    let mut second = server.client();
    // Both are accepted and hold their slots.
    first.assert_nothing_pending();
    second.assert_nothing_pending();

    let mut third = server.client();
    assert_eq!(third.recv(), SERVER_BUSY);
    third.expect_eof();
    // The two open ones are unaffected.
    first.assert_nothing_pending();
    second.assert_nothing_pending();

    // A slot frees when a client leaves. The server notices the close asynchronously, so retry
    // for a while; every refused attempt must be exactly the busy line.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = server.client();
        next.send(LIST);
        match next.try_recv() {
            Ok(Some(line)) if line == SERVER_BUSY => {}
            Ok(Some(line)) => {
                assert_eq!(line, r#"{"jsonrpc":"2.0","id":"list","result":[]}"#);
                break;
            }
            // Refused, and our request made the close a reset.
            Ok(None) | Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "no slot freed after a client left"
        );
        thread::sleep(Duration::from_millis(20));
    }
    second.assert_nothing_pending();
}

#[test]
fn idle_timeout_closes_a_silent_connection() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut silent = server.client();
    silent.assert_nothing_pending();
    let since = Instant::now();
    silent.set_read_timeout(Duration::from_secs(6));
    silent.expect_eof();
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // A connection that keeps talking is not idle.
    let mut busy = server.client();
    for _ in 0..6 {
        thread::sleep(Duration::from_millis(300));
        busy.assert_nothing_pending();
    }
    // And the server still takes new connections.
    check(
        &server,
        &[(LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#))],
    );
}

#[test]
fn a_client_that_never_reads_is_slowed_down_not_buffered() {
    let server = Server::start(&[]);
    // 100 groups with long names: every getAllGroups answer is about 14 KB.
    let creates: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["{i:03}{}","{}"]}}"#,
                "n".repeat(90),
                "e".repeat(20)
            )
        })
        .collect();
    let mut setup = server.client();
    let created = setup.call(&format!("[{}]", creates.join(",")));
    assert!(created.ends_with(r#"{"jsonrpc":"2.0","id":99,"result":100}]"#));
    let list = setup.call(LIST);
    assert!(list.len() > 13_000, "answer of {} bytes", list.len());
    let before = server.memory_kib("VmRSS");

    // 100 000 requests (about 14 GB of answers if they were all produced), never read.
    let greedy = Client::connect(server.addr);
    let mut stream = greedy.stream();
    let sender = thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..100_000 {
            writeln!(
                all,
                r#"{{"jsonrpc":"2.0","method":"getAllGroups","id":{i}}}"#
            )
            .unwrap();
        }
        // Blocks once the server stops reading; ends with an error when the socket is shut.
        let _ = stream.write_all(&all);
    });

    // For two seconds, others are served promptly and memory stays put.
    let mut other = server.client();
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(2) {
        assert_memory_bounded(&server, before, "while a client does not read");
        let asked = Instant::now();
        assert_eq!(other.call(LIST), list);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "another client waited {:?}",
            asked.elapsed()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_memory_bounded(&server, before, "while a client does not read");

    greedy.stream().shutdown(Shutdown::Both).unwrap();
    sender.join().unwrap();
    // The greedy client's end does not disturb the others.
    assert_eq!(other.call(LIST), list);
}

#[test]
fn the_default_line_limit_is_1_mib() {
    let server = Server::start(&[]);
    let mut client = server.client();
    let at_limit = list_request_of(1024 * 1024);
    let id = &at_limit[47..at_limit.len() - 2];
    let answer = client.call(&at_limit);
    assert!(
        answer == format!(r#"{{"jsonrpc":"2.0","id":"{id}","result":[]}}"#),
        "a request of exactly 1 MiB is answered (got {} bytes: {}…)",
        answer.len(),
        &answer[..answer.len().min(120)]
    );
    assert_line_too_long(
        &client.call(&list_request_of(1024 * 1024 + 1)),
        &["1048576", "1 MiB", "1MiB"],
    );
    client.assert_nothing_pending();
}

#[test]
fn max_batch_applies_over_stdio_too() {
    let db = Db::new();
    let create = |i: u32| {
        format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["g{i}"]}}"#)
    };
    let over = format!("[{},{},{}]", create(1), create(2), create(3));
    let at_limit = format!("[{},{}]", create(4), create(5));
    let answers = stdio(&db, &["--max-batch", "2"], &[&over, &at_limit, LIST]);
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert_line(&over, common::INVALID_REQUEST, &answers[0]);
    assert_eq!(
        answers[1],
        r#"[{"jsonrpc":"2.0","id":4,"result":1},{"jsonrpc":"2.0","id":5,"result":2}]"#
    );
    assert_eq!(
        answers[2],
        r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"g4"},{"id":"2","external_id":"","name":"g5"}]}"#
    );
}

#[test]
fn idle_timeout_0_means_no_timeout() {
    let server = Server::start(&["--idle-timeout", "0"]);
    let mut silent = server.client();
    silent.assert_nothing_pending();
    silent.set_read_timeout(Duration::from_millis(1500));
    match silent.try_recv() {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => {
            panic!("a silent connection with --idle-timeout 0 should stay open, got {other:?}")
        }
    }
    silent.set_read_timeout(common::DEADLINE);
    silent.assert_nothing_pending();
}
