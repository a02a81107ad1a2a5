//! Starting and stopping: the test scripts' server start-up has no race.

mod common;

use std::process::Command;

use common::GROUPD;

/// `scripts/groupd-server.sh` must not read the server's log before the log exists. The
/// background shell that starts the server is slowed down (its trace prompt sleeps), so a
/// script that greps before creating the log is caught every time, not now and then.
#[cfg(target_os = "linux")]
#[test]
fn the_scripts_start_their_server_without_reading_a_missing_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = r#"
        set -euo pipefail
        source scripts/groupd-server.sh
        # Only the subshell that runs the server in the background (a shell whose parent is this
        # one and that has not seen `$!` set yet) sleeps before it runs a command.
        PS4='$(read -r _ _ _ parent _ </proc/$BASHPID/stat; [[ $parent != $$ && -z ${!:-} ]] && sleep 1)+ '
        exec {trace}>/dev/null
        BASH_XTRACEFD=$trace
        set -x
        start_server "$SERVER_DIR" tcp
        set +x
        stop_cleanly "$SERVER_DIR"
        echo "served on $address"
    "#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("groupd", GROUPD)
        .env("SERVER_DIR", dir.path().join("server"))
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("served on 127.0.0.1:"), "{stdout}");
    assert_eq!(stderr, "", "the script complained");
}
