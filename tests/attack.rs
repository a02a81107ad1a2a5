//! SPEC §6 under attack, against the real server with its default limits (except where a test
//! shortens the idle timeout): a 20 MiB line, a 1001-entry batch, the 1025th connection, idle
//! connections, 500 stalled half-lines, and a client that pipelines 100 000 requests and never
//! reads. Each checks that the attack is contained (memory from `/proc/PID/status`, the
//! answer the attacker gets) and that everyone else is still served, promptly.

mod common;

use std::io::{ErrorKind, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, INVALID_REQUEST, SERVER_BUSY, Server, assert_line};

const KIB_PER_MIB: u64 = 1024;

/// The most the server's peak memory may grow (KiB) while one client attacks it.
const MEMORY_BOUND_KIB: u64 = 32 * KIB_PER_MIB;

const LIST: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;
const EMPTY_LIST: &str = r#"{"jsonrpc":"2.0","id":"list","result":[]}"#;
const GET_1: &str = r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":[1]}"#;
const GROUP_1: &str =
    r#"{"jsonrpc":"2.0","id":1,"result":{"id":"1","external_id":"","name":"one"}}"#;

#[track_caller]
fn assert_memory_bounded(server: &Server, before_kib: u64, what: &str) {
    let peak = server.memory_kib("VmHWM");
    println!("{what}: VmRSS {before_kib} KiB before, VmHWM {peak} KiB after");
    assert!(
        peak.saturating_sub(before_kib) < MEMORY_BOUND_KIB,
        "{what}: server memory went from {before_kib} KiB to a peak of {peak} KiB"
    );
}

/// A server holding group 1, "one".
fn server_with_one_group(args: &[&str]) -> Server {
    let server = Server::start(args);
    server.client().check(&[(
        r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["one"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
    )]);
    server
}

/// Round-trip time of one request on `client`, whose answer must be `expected`.
fn timed_call(client: &mut Client, request: &str, expected: &str) -> Duration {
    let start = Instant::now();
    let got = client.call(request);
    let took = start.elapsed();
    assert_line(request, expected, &got);
    took
}

#[test]
fn a_20_mib_line_without_newline_is_refused_in_bounded_memory() {
    let server = Server::start(&[]);
    let mut attacker = server.client();
    attacker.check(&[(LIST, Some(EMPTY_LIST))]);
    let before = server.memory_kib("VmRSS");

    let mut stream = attacker.stream();
    stream
        .set_write_timeout(Some(common::DEADLINE))
        .expect("timeout");
    let sender = thread::spawn(move || -> std::io::Result<()> {
        stream.write_all(br#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":[""#)?;
        let chunk = vec![b'a'; 256 * 1024];
        for _ in 0..80 {
            stream.write_all(&chunk)?;
        }
        Ok(())
    });
    // Refused once the limit is crossed, long before the line ends.
    let refusal = attacker.recv();
    assert_line(
        "(20 MiB line)",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request","data":…}}"#,
        &refusal,
    );
    assert!(
        ["1048576", "1 MiB", "1MiB"]
            .iter()
            .any(|l| refusal.contains(l)),
        "data should give the limit: {refusal}"
    );
    // Others are served meanwhile.
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
    sender
        .join()
        .expect("sender")
        .expect("the server reads (and drops) the whole 20 MiB");
    assert_memory_bounded(&server, before, "a 20 MiB line");

    // The newline ends the discarded line; the same connection is then served as before, and
    // the createGroup in the over-long line never ran.
    attacker.send_raw(b"\"]}\n");
    attacker.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn a_1001_entry_batch_gets_one_error_and_none_of_it_runs() {
    let server = Server::start(&[]);
    let entry = |i: usize| {
        format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["g{i}"]}}"#)
    };
    let batch = |n: usize| format!("[{}]", (0..n).map(entry).collect::<Vec<_>>().join(","));
    let mut client = server.client();
    client.check(&[
        (&batch(1001), Some(INVALID_REQUEST)),
        (LIST, Some(EMPTY_LIST)),
    ]);
    // 1000 entries is within the limit: all run, all answered in one array.
    let answer = client.call(&batch(1000));
    let expected: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{}}}"#, i + 1))
        .collect();
    assert_eq!(answer, format!("[{}]", expected.join(",")));
}

/// Fails unless the test process may hold `needed` open files (it holds both ends' sockets of
/// nothing, but the client ends of all its connections, and the server inherits the limit).
fn require_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let soft: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        soft >= needed,
        "this test needs {needed} open files; raise the limit (ulimit -n {needed}) to run it"
    );
}

#[test]
fn the_1025th_connection_gets_one_server_busy_line() {
    require_open_files(2200);
    let server = Server::start(&[]);
    // 1024 connections, each proved to hold its slot by an answer.
    let mut held: Vec<Client> = (0..1024).map(|_| server.client()).collect();
    for client in &mut held {
        client.send(LIST);
    }
    for client in &mut held {
        assert_line(LIST, EMPTY_LIST, &client.recv());
    }
    let mut refused = server.client();
    assert_line("(connection 1025)", SERVER_BUSY, &refused.recv());
    refused.expect_eof();
    // The held connections still work.
    held[0].check(&[(LIST, Some(EMPTY_LIST))]);
    held[1023].check(&[(LIST, Some(EMPTY_LIST))]);
    // Closing one frees its slot for the next client (once the server has seen the close).
    drop(held.pop());
    let start = Instant::now();
    loop {
        let mut client = server.client();
        let answer = client.call(LIST);
        if answer == EMPTY_LIST {
            break;
        }
        assert_line("(a retry while the slot is freed)", SERVER_BUSY, &answer);
        assert!(
            start.elapsed() < common::DEADLINE,
            "the freed slot was never reused"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut client = server.client();
    // Talking every 400 ms keeps it open well past one second.
    let start = Instant::now();
    loop {
        client.check(&[(LIST, Some(EMPTY_LIST))]);
        if start.elapsed() > Duration::from_secs(2) {
            break;
        }
        thread::sleep(Duration::from_millis(400));
    }
    // Then silence: closed after about a second, not before.
    let silent = Instant::now();
    client.set_read_timeout(Duration::from_secs(5));
    client.expect_eof();
    let waited = silent.elapsed();
    assert!(
        (Duration::from_millis(500)..Duration::from_millis(3000)).contains(&waited),
        "closed after {waited:?} of silence"
    );
    // A connection that sent half a line and stalled is idle too.
    let mut half = server.client();
    half.send_raw(br#"{"jsonrpc":"2.0","method":"#);
    half.set_read_timeout(Duration::from_secs(5));
    half.expect_eof();
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn five_hundred_stalled_half_lines_do_not_delay_a_new_client() {
    require_open_files(1200);
    let server = server_with_one_group(&[]);
    let stalled: Vec<Client> = (0..500)
        .map(|_| {
            let mut client = server.client();
            client.send_raw(br#"{"jsonrpc":"2.0","method":"getGroup","id":1,"par"#);
            client
        })
        .collect();
    // Make sure the server has taken all 500 in (the last one's half line included).
    let mut probe = server.client();
    probe.check(&[(
        LIST,
        Some(
            r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"one"}]}"#,
        ),
    )]);
    for _ in 0..5 {
        let start = Instant::now();
        let mut client = server.client();
        let took = timed_call(&mut client, GET_1, GROUP_1);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a new client took {:?} to connect and be answered ({took:?} for the call)",
            start.elapsed()
        );
    }
    // The stalled ones finish their lines and are answered too.
    for mut client in stalled {
        client.send_raw(b"ams\":[1]}\n");
        assert_line(GET_1, GROUP_1, &client.recv());
    }
}

/// Ten groups with the longest names and external ids there are, so that one `getAllGroups`
/// answer is about 4 KiB; returns that answer (for request id 1).
fn add_big_groups(server: &Server) -> String {
    let mut client = server.client();
    let mut groups = Vec::new();
    for i in 2..12 {
        let name = format!("{i:0>100}");
        let external_id = "e".repeat(255);
        let create = format!(
            r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["{name}","{external_id}"]}}"#
        );
        assert_eq!(
            client.call(&create),
            format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{i}}}"#)
        );
        groups.push(format!(
            r#"{{"id":"{i}","external_id":"{external_id}","name":"{name}"}}"#
        ));
    }
    groups.push(r#"{"id":"1","external_id":"","name":"one"}"#.to_owned());
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":[{}]}}"#,
        groups.join(",")
    )
}

#[test]
fn a_client_that_pipelines_100000_requests_and_never_reads_is_contained() {
    const LIST_1: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#;
    let server = server_with_one_group(&[]);
    let all_groups = add_big_groups(&server);
    let before = server.memory_kib("VmRSS");
    let attacker = server.client();
    let mut stream = attacker.stream();
    // 100 000 requests whose answers (about 400 MiB) no socket buffer can hold.
    let sender = thread::spawn(move || {
        // When the server stops reading, our writes block; the timeout tells us it did.
        stream
            .set_write_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let all = format!("{LIST_1}\n").repeat(100_000);
        let mut sent = 0;
        for chunk in all.as_bytes().chunks(16 * 1024) {
            match stream.write_all(chunk) {
                Ok(()) => sent += chunk.len(),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (sent, true);
                }
                Err(e) => panic!("the attacker's connection failed: {e}"),
            }
        }
        (sent, false)
    });

    // Meanwhile another client's getGroup stays quick.
    let mut client = server.client();
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let took = timed_call(&mut client, GET_1, GROUP_1);
            thread::sleep(Duration::from_millis(5));
            took
        })
        .collect();
    let (sent, blocked) = sender.join().expect("sender");
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    println!(
        "getGroup beside a pipelining client: median {:?}, p99 {p99:?}, max {:?}; the attacker \
         got {sent} bytes in before the server pushed back",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(
        p99 < Duration::from_millis(100),
        "getGroup p99 {p99:?} (median {:?}) while another client pipelined",
        times[times.len() / 2]
    );
    assert!(
        blocked,
        "the server took all {sent} bytes of 100 000 requests without its answers being read"
    );
    assert_memory_bounded(&server, before, "a client that never reads");
    // The attacker's answers so far are all there, in order, once it reads.
    let mut attacker = attacker;
    for _ in 0..100 {
        assert_eq!(attacker.recv(), all_groups);
    }
    drop(attacker);
    client.check(&[(GET_1, Some(GROUP_1))]);
}
