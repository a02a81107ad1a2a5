//! `groupd check`, `groupd dump` and `groupd restore` with `--db postgres://…` (SPEC §13, §14),
//! run as a user runs them: the real binary against a throw-away PostgreSQL 15
//! (tests/support/postgres.rs). A dump moves between the backends with its ids and its next id.

mod common;
#[path = "support/postgres.rs"]
mod postgres;

use common::{Db, Finished, Server, one_line};

fn groupd(args: &[&str], input: &[u8]) -> Finished {
    common::run(args, input)
}

/// The calls that fill a database (shared with `tests/backup.rs`).
const FILL: [&str; 9] = common::BACKUP_FILL;

/// The dump of a database filled with [`FILL`].
const FILLED_DUMP: &str = concat!(
    r#"{"format":"groupd-dump","version":1,"next_id":6,"groups":2}"#,
    "\n",
    r#"{"id":"1","external_id":"x","name":"Ops 2"}"#,
    "\n",
    r#"{"id":"2","external_id":"é€𝄞","name":"Équipe \"Nord\"\\ \t"}"#,
    "\n"
);

/// `groupd stdio --db DB` fed `lines`; their answers.
fn stdio(db: &str, lines: &[&str]) -> Vec<String> {
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let done = groupd(&["stdio", "--db", db], input.as_bytes());
    assert!(done.status.success(), "stdio: {}", done.stderr);
    done.stdout_lines()
}

fn dump(db: &str) -> Vec<u8> {
    let done = groupd(&["dump", "--db", db], b"");
    assert!(done.status.success(), "dump: {}", done.stderr);
    assert!(done.stderr.is_empty(), "dump: {}", done.stderr);
    done.stdout
}

fn restore(db: &str, dump: &[u8]) -> String {
    let done = groupd(&["restore", "--db", db], dump);
    assert!(done.status.success(), "restore: {}", done.stderr);
    String::from_utf8(done.stdout).expect("UTF-8")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn dump_restore_dump_on_postgres_gives_the_same_bytes() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let source = cluster.database("source");
    assert_eq!(stdio(&source, &FILL).len(), FILL.len());
    let first = dump(&source);
    assert_eq!(text(&first), FILLED_DUMP);

    let copy = cluster.database("copy");
    let said = restore(&copy, &first);
    assert_eq!(said, format!("{copy}: restored 2 groups, next id 6\n"));
    assert_eq!(
        text(&dump(&copy)),
        FILLED_DUMP,
        "dump → restore → dump differs"
    );
}

/// File → PostgreSQL → file: the ids and the next id survive both moves.
#[test]
fn a_dump_moves_between_the_backends_with_its_ids() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let file = Db::new();
    assert_eq!(common::stdio(&file, &[], &FILL).len(), FILL.len());
    let from_file = dump(file.arg());
    assert_eq!(text(&from_file), FILLED_DUMP);

    let url = cluster.database("moved");
    restore(&url, &from_file);
    let from_postgres = dump(&url);
    assert_eq!(text(&from_postgres), FILLED_DUMP, "file → PostgreSQL");

    let back = Db::new();
    restore(back.arg(), &from_postgres);
    assert_eq!(text(&dump(back.arg())), FILLED_DUMP, "PostgreSQL → file");
}

/// A restored table's sequence hands out the dump's next id, to `groupd serve` and to a plain
/// SQL insert (Kanboard's), and the restored names are taken.
#[test]
fn after_a_restore_the_next_create_gets_the_dumps_next_id() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("served");
    restore(&url, FILLED_DUMP.as_bytes());
    let server = Server::try_serve(&["--listen", "127.0.0.1:0", "--db", &url])
        .unwrap_or_else(|f| panic!("serve exited with {}: {}", f.status, f.stderr));
    let mut client = server.client();
    let mut result = |call: &str| {
        let answer = client.call(call);
        let value: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        value["result"].clone()
    };
    let create = |name: &str| {
        format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["{name}"]}}"#)
    };
    assert_eq!(result(&create("new")), 6);
    let sql = "INSERT INTO groups (name) VALUES ('by Kanboard') RETURNING id";
    assert_eq!(cluster.psql("served", sql).trim(), "7");
    assert_eq!(result(&create("Ops 2")), false);
    let get = r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":[2]}"#;
    assert_eq!(result(get)["name"], "Équipe \"Nord\"\\ \t");

    // An empty dump whose ids were all used up: the first create gets its next id too.
    let empty = cluster.database("empty");
    restore(
        &empty,
        br#"{"format":"groupd-dump","version":1,"next_id":42,"groups":0}"#,
    );
    let answers = stdio(
        &empty,
        &[r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["first"]}"#],
    );
    assert_eq!(answers, [r#"{"jsonrpc":"2.0","id":1,"result":42}"#]);
}

/// A table that holds a row is refused, even when no id would collide, and keeps what it held;
/// a bad dump is refused before anything is connected to or created.
#[test]
fn restore_refuses_a_table_with_rows_and_a_bad_dump_and_writes_nothing() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("held");
    stdio(
        &url,
        &[r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Existing"]}"#],
    );
    let before = dump(&url);
    let dump_of_others = concat!(
        r#"{"format":"groupd-dump","version":1,"next_id":9,"groups":2}"#,
        "\n",
        r#"{"id":"5","external_id":"","name":"five"}"#,
        "\n",
        r#"{"id":"8","external_id":"","name":"eight"}"#,
        "\n"
    );
    let done = groupd(&["restore", "--db", &url], dump_of_others.as_bytes());
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(done.stdout.is_empty());
    let line = one_line(&done.stderr);
    assert!(
        line.contains("holds 1 rows") && line.ends_with("nothing was written"),
        "{line}"
    );
    assert_eq!(dump(&url), before, "the refused restore changed the table");

    let fresh = cluster.database("fresh");
    let bad = FILLED_DUMP.replace("\"next_id\":6", "\"next_id\":2");
    let done = groupd(&["restore", "--db", &fresh], bad.as_bytes());
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    let line = one_line(&done.stderr);
    assert!(
        line.contains("line 3: id 2 is not below next_id 2")
            && line.contains("nothing was written"),
        "{line}"
    );
    let table = cluster.psql("fresh", "SELECT to_regclass('groups') IS NULL");
    assert_eq!(table.trim(), "t", "a bad dump created the table");

    // Past 32-bit ids (Kanboard's SERIAL) the sequence cannot be set, after every insert
    // succeeded: the one transaction rolls them back.
    let too_far = FILLED_DUMP.replace("\"next_id\":6", "\"next_id\":3000000000");
    let done = groupd(&["restore", "--db", &fresh], too_far.as_bytes());
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert!(one_line(&done.stderr).ends_with("nothing was written"));
    assert_eq!(
        cluster.psql("fresh", "SELECT count(*) FROM groups").trim(),
        "0"
    );
}

#[test]
fn check_prints_the_counts_and_refuses_what_it_cannot_serve() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("checked");
    stdio(&url, &FILL);
    let with_password = url.replace("postgres@", "postgres:s3cret@");
    let done = groupd(&["check", "--db", &with_password], b"");
    assert!(done.status.success(), "{}", done.stderr);
    let shown = url.replace("postgres@", "postgres:***@");
    assert_eq!(
        text(&done.stdout),
        format!("{shown}: healthy: 2 groups, next id 6\n")
    );

    // GROUPD_DB names it too; an empty database's table is created and counted.
    let empty = cluster.database("new");
    let done = common::run_with_env(&["check"], &[("GROUPD_DB", &empty)], b"");
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        text(&done.stdout),
        format!("{empty}: healthy: 0 groups, next id 1\n")
    );

    let done = groupd(&["check", "--repair", "--db", &url], b"");
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(one_line(&done.stderr).contains("PostgreSQL repairs its own"));

    cluster.database("unfit");
    cluster.psql("unfit", "CREATE TABLE groups (id integer, name text)");
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/x", unused_port());
    let cases = [
        (cluster.url("unfit"), "does not fit groupd"),
        (unreachable, "unreachable"),
    ];
    for (db, expected) in cases {
        for command in ["check", "dump", "restore"] {
            let args = ["--db", &db, "--connect-timeout", "1"];
            let done = groupd(&[&[command][..], &args].concat(), FILLED_DUMP.as_bytes());
            assert_eq!(
                done.status.code(),
                Some(1),
                "{command} {db}: {}",
                done.stderr
            );
            assert!(done.stdout.is_empty(), "{command} {db}");
            let line = one_line(&done.stderr);
            assert!(line.contains(expected), "{command} {db}: {line}");
        }
    }
}

/// A port nothing listens on (bound, then released).
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
