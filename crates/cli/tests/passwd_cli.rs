//! `mquictt passwd` as a user runs it: batch mode adds and changes users, `-D` deletes them,
//! and the file it writes is one the broker library loads and checks passwords against.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use mquictt_broker::auth::PasswordFile;

fn passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mquictt"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mquictt passwd");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    child.wait_with_output().expect("mquictt passwd finishes")
}

#[test]
fn batch_mode_adds_changes_and_deletes_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("passwd");
    let path = file.to_str().expect("utf-8 path");
    let added = passwd(&[path, "alice", "-b"], "first secret\n");
    assert!(added.status.success(), "{added:?}");
    assert!(String::from_utf8_lossy(&added.stdout).contains("Added"));
    let changed = passwd(&["-b", path, "alice"], "second secret\n");
    assert!(changed.status.success(), "{changed:?}");
    assert!(passwd(&[path, "bob", "-b"], "builder\n").status.success());
    let loaded = PasswordFile::load(&file).expect("the broker loads the file");
    assert!(loaded.verify("alice", b"second secret"));
    assert!(!loaded.verify("alice", b"first secret"));
    assert!(loaded.scram("alice").is_some());
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.contains("secret"), "a password leaked into the file");
    let deleted = passwd(&["-D", path, "bob"], "");
    assert!(deleted.status.success(), "{deleted:?}");
    assert!(!PasswordFile::load(&file).expect("load").contains("bob"));
    let missing = passwd(&["-D", path, "carol"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("carol"));
    let empty = passwd(&[path, "dave", "-b"], "\n");
    assert!(!empty.status.success());
    let bad_name = passwd(&[path, "eve:admin", "-b"], "x\n");
    assert!(!bad_name.status.success());
}
