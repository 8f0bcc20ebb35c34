//! Crash safety of the record store: a child process (this test binary re-invoked)
//! writes records in a loop and is SIGKILLed at varying points; every record must then
//! load whole, at its old or new revision, and leftover temp files are ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use executor::records::{IncomingRecord, RecordStore, validate_record};
use model::{RecordKey, RecordKind};

const DIR_ENV: &str = "V2ENGINE_CRASH_DIR";
const READY: &str = "CRASH-CHILD-READY";
const KEYS: [&str; 4] = ["v0", "v1", "v2", "v3"];

fn payload(rev: u64) -> String {
    format!("{rev:016}").repeat(4096) // 64 KiB, so a kill often lands mid-write
}

/// The child: run only by `crash_safe_records_survive_sigkill` through `--ignored`.
#[test]
#[ignore = "child process of crash_safe_records_survive_sigkill"]
fn crash_child_writer() {
    let dir = std::env::var(DIR_ENV).expect("run by the crash test");
    let (mut store, _) = RecordStore::open(Path::new(&dir)).unwrap();
    let base = store
        .list(None)
        .iter()
        .map(|r| r.revision)
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout();
    writeln!(out, "{READY}").unwrap();
    out.flush().unwrap();
    for rev in base + 1..=base + 100_000 {
        let batch: Vec<_> = KEYS
            .iter()
            .map(|k| {
                let spec = serde_json::json!({"rev": rev, "payload": payload(rev)});
                validate_record(&IncomingRecord {
                    kind: "volume".into(),
                    name: (*k).into(),
                    revision: rev,
                    deleted: false,
                    spec_json: spec.to_string(),
                })
                .unwrap()
            })
            .collect();
        store.put(batch).unwrap();
    }
}

#[test]
fn crash_safe_records_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last = [0u64; 4];
    for round in 0..12u64 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.trim_end().ends_with(READY)); // libtest prints "test NAME ... " first
        assert!(ready, "round {round}: the child never got ready");
        std::thread::sleep(Duration::from_millis(1 + (round * 7) % 30));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let (store, problems) = RecordStore::open(tmp.path()).unwrap();
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        for (i, k) in KEYS.iter().enumerate() {
            let Some(r) = store.get(&RecordKey::new(RecordKind::Volume, *k)) else {
                assert_eq!(last[i], 0, "round {round}: record {k} disappeared");
                continue;
            };
            assert_eq!(
                r.spec["rev"], r.revision,
                "round {round}: {k} mixes revisions"
            );
            assert_eq!(
                r.spec["payload"],
                payload(r.revision),
                "round {round}: {k} is partial"
            );
            assert!(
                r.revision >= last[i],
                "round {round}: {k} went back in time"
            );
            last[i] = r.revision;
        }
    }
    assert!(
        last.iter().all(|r| *r > 0),
        "the children wrote something: {last:?}"
    );

    // A torn temp file (as a crash mid-write leaves) is ignored at load.
    let vdir = tmp.path().join("records/volume");
    std::fs::write(vdir.join(".v0.json.tmp-999-0"), "{\"kind\":\"volume\",\"na").unwrap();
    let (store, problems) = RecordStore::open(tmp.path()).unwrap();
    assert!(problems.is_empty());
    assert_eq!(store.list(None).len(), 4);
}
