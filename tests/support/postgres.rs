//! A throw-away PostgreSQL 15 cluster for tests: `initdb` into a temporary directory (as the
//! `postgres` OS user when the tests run as root: initdb refuses root), then `postgres` as a
//! child process of the test, listening on 127.0.0.1 at a free port, stopped when dropped.
//!
//! Binaries come from `GROUPD_PG_BIN` or Debian's `/usr/lib/postgresql/15/bin`
//! (`scripts/install-postgres.sh` installs them). Without them a test skips with a loud message,
//! unless `GROUPD_REQUIRE_POSTGRES` is set (as `.ci/run` does): then it fails.
//!
//! The cluster's default collation is ICU's English, whose order is not the bytes' order, so a
//! query that forgets `COLLATE "C"` sorts differently from SPEC §4.
//! Included with `#[path]`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How long a start (initdb excluded) may take, crash recovery included.
const START_WAIT: Duration = Duration::from_secs(60);
const READY: &str = "database system is ready to accept connections";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    settings: Vec<String>,
    /// `(uid, gid)` of the `postgres` user when running as root.
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    /// Every line the server has logged, across restarts.
    log: Arc<Mutex<String>>,
}

/// The binaries, or `None` (after a loud message) when they are missing and not required.
fn binaries() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var("GROUPD_PG_BIN").unwrap_or_else(|_| DEFAULT_BIN.into()));
    if bin.join("initdb").exists() && bin.join("postgres").exists() {
        return Some(bin);
    }
    if std::env::var_os("GROUPD_REQUIRE_POSTGRES").is_some() {
        panic!(
            "PostgreSQL binaries missing in {} and GROUPD_REQUIRE_POSTGRES is set: \
             run scripts/install-postgres.sh",
            bin.display()
        );
    }
    eprintln!(
        "\n########################################################################\n\
         ## SKIPPED: no PostgreSQL binaries in {}.\n\
         ## Run scripts/install-postgres.sh (or set GROUPD_PG_BIN); set\n\
         ## GROUPD_REQUIRE_POSTGRES=1 to make this a failure.\n\
         ########################################################################\n",
        bin.display()
    );
    None
}

fn output(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `postgres` user's ids when this process is root (initdb and postgres refuse root).
fn owner() -> Option<(u32, u32)> {
    let me = output(Command::new("id").arg("-u"));
    if me.trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> u32 {
        output(Command::new("id").args([flag, "postgres"]))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("id {flag} postgres: {e}"))
    };
    Some((id("-u"), id("-g")))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Cluster {
    /// A new cluster with default settings; `None` when skipped.
    pub fn start() -> Option<Cluster> {
        Cluster::start_with(&[])
    }

    /// A new cluster that takes TLS connections only, its certificate (for `localhost` and
    /// 127.0.0.1) signed by a throw-away CA; the CA certificate's path (for `sslrootcert`).
    pub fn start_tls() -> Option<(Cluster, PathBuf)> {
        Cluster::build(&["ssl=on"], |data, owner| {
            std::fs::write(
                data.join("san.ext"),
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
            )
            .unwrap();
            for args in [
                "req -new -x509 -days 2 -nodes -subj /CN=groupd-test-ca -keyout ca.key -out ca.crt",
                "req -new -nodes -subj /CN=localhost -keyout server.key -out server.csr",
                "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                 -extfile san.ext -out server.crt",
            ] {
                let mut openssl = Command::new("openssl");
                openssl.args(args.split_whitespace());
                as_owner(&mut openssl, owner);
                output(openssl.current_dir(data));
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n\
                 local all all trust\n",
            )
            .unwrap();
        })
        .map(|cluster| {
            let ca = cluster.data_dir().join("ca.crt");
            (cluster, ca)
        })
    }

    /// A new cluster with `-c NAME=VALUE` settings.
    pub fn start_with(settings: &[&str]) -> Option<Cluster> {
        Cluster::build(settings, |_, _| {})
    }

    /// initdb, then `prepare(data_dir, owner)`, then start.
    fn build(
        settings: &[&str],
        prepare: impl FnOnce(&Path, Option<(u32, u32)>),
    ) -> Option<Cluster> {
        let bin = binaries()?;
        let dir = tempfile::tempdir().unwrap();
        let owner = owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-N", "-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args([
                "--locale=C.UTF-8",
                "--locale-provider=icu",
                "--icu-locale=en",
            ])
            .arg("-D")
            .arg(dir.path().join("data"));
        as_owner(&mut initdb, owner);
        output(&mut initdb);
        prepare(&dir.path().join("data"), owner);
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            settings: settings.iter().map(|s| s.to_string()).collect(),
            owner,
            child: None,
            log: Arc::default(),
        };
        cluster.start_again();
        Some(cluster)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server again after a stop (same data, same port when it had one).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        for _ in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            match self.spawn() {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(log) if log.contains("could not bind") || log.contains("in use") => {
                    self.port = 0; // taken meanwhile: another one
                }
                Err(log) => panic!("postgres did not start:\n{log}"),
            }
        }
        panic!("postgres found no free port");
    }

    /// Spawns `postgres` and waits for it to accept connections; the log on failure.
    fn spawn(&self) -> Result<Child, String> {
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"]);
        for setting in &self.settings {
            command.args(["-c", setting]);
        }
        as_owner(&mut command, self.owner);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run postgres: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (lines, ready) = mpsc::channel();
        let kept = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("GROUPD_PG_LOG").is_some() {
                    eprintln!("postgres: {line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push_str(&line);
                    kept.push('\n');
                }
                let _ = lines.send(line);
            }
        });
        let deadline = std::time::Instant::now() + START_WAIT;
        let mut log = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ready.recv_timeout(left) {
                Ok(line) if line.contains(READY) => return Ok(child),
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(log);
                }
            }
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn database(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        self.url(db)
    }

    /// Runs `sql` with psql in `db`; its unaligned output. Panics when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        output(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", db, "-c", sql]),
        )
    }

    /// `pg_ctl stop -m immediate`: SIGQUIT, no checkpoint; the next start recovers from WAL.
    pub fn stop_immediate(&mut self) {
        self.signal("-QUIT");
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&mut self) {
        self.signal("-INT");
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
        command.env("HOME", "/tmp");
    }
    command.current_dir(Path::new("/"));
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}
