//! Replays fixtures/spdk/raw.jsonl (what a real SPDK v24.09 spdk_tgt answered) against
//! fresh simulators, in order, and compares every answer with the recorded one.
//!
//! Device paths become temp sparse files, 10.250.0.1 becomes 127.0.0.1 and ports become free
//! high ports. UUIDs differ from run to run, so the comparison learns a mapping from each
//! recorded UUID to the one the simulator produced and holds it to that mapping afterwards
//! (also inside strings such as host NQNs, and in later requests). Everything else must be
//! equal: key sets, types, numbers, strings, array lengths, error codes and messages. The only
//! values not compared are rebuild progress counters (they depend on time). Answers to `*get*`
//! methods are polled (bounded) when the recording reflects time passing (a rebuild finishing,
//! a reconnect, a controller loss timeout).
//!
//! Left out, because the simulator does not implement them: malloc bdevs (d.4, d.5),
//! framework_get_subsystems / framework_get_config, nvmf_subsystem_get_qpairs, restarting from
//! a `-c` JSON config (replaced by re-running bdev_aio_create), and flow h (stale data in
//! recycled clusters: the simulator has no data).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use spdk_sim::rpc::METHODS;
use spdk_sim::{Config, Sim};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Client, free_port, sparse};

#[derive(Debug, Clone)]
struct Exchange {
    index: usize,
    target: String,
    method: Option<String>,
    request: String,
    response: String,
}

/// The recorded SPDK answers: the repository's `fixtures/spdk/` (see its README.md).
fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/spdk")
}

fn load() -> Vec<Exchange> {
    let path = transcripts_dir().join("raw.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .enumerate()
        .map(|(index, line)| {
            let v: Value = serde_json::from_str(line).expect("raw.jsonl line is JSON");
            Exchange {
                index,
                target: v["target"].as_str().unwrap_or("A").to_owned(),
                method: v["method"].as_str().map(str::to_owned),
                request: v["request"].as_str().unwrap_or_default().to_owned(),
                response: v["response_raw"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

// ----- UUID-tolerant comparison -----------------------------------------------------------------

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// Byte ranges of 8-4-4-4-12 UUIDs inside `s`.
fn uuid_spans(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 36 <= b.len() {
        let cand = &b[i..i + 36];
        let ok = cand.iter().enumerate().all(|(k, &c)| {
            if [8, 13, 18, 23].contains(&k) {
                c == b'-'
            } else {
                is_hex(c)
            }
        });
        if ok {
            out.push((i, i + 36));
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}

#[derive(Default)]
struct Mapper {
    map: HashMap<String, String>,
}

impl Mapper {
    fn rewrite_request(&self, s: &str) -> String {
        let mut out = String::new();
        let mut last = 0;
        for (a, b) in uuid_spans(s) {
            out.push_str(&s[last..a]);
            let u = s[a..b].to_ascii_lowercase();
            out.push_str(self.map.get(&u).map_or(&s[a..b], String::as_str));
            last = b;
        }
        out.push_str(&s[last..]);
        out
    }

    fn uuid(&mut self, exp: &str, act: &str) -> bool {
        let (e, a) = (exp.to_ascii_lowercase(), act.to_ascii_lowercase());
        let nil = "00000000-0000-0000-0000-000000000000";
        if e == nil || a == nil {
            return e == a;
        }
        match self.map.get(&e) {
            Some(m) => *m == a,
            None => {
                self.map.insert(e, a);
                true
            }
        }
    }

    fn string(&mut self, exp: &str, act: &str) -> bool {
        // nguid: 32 upper-case hex digits derived from a UUID.
        if exp.len() == 32 && exp.bytes().all(is_hex) && act.len() == 32 && act.bytes().all(is_hex)
        {
            let dashed = |s: &str| {
                format!(
                    "{}-{}-{}-{}-{}",
                    &s[..8],
                    &s[8..12],
                    &s[12..16],
                    &s[16..20],
                    &s[20..]
                )
            };
            return self.uuid(&dashed(exp), &dashed(act));
        }
        let (es, as_) = (uuid_spans(exp), uuid_spans(act));
        if es.len() != as_.len() {
            return exp == act;
        }
        let mut last = (0, 0);
        for ((ea, eb), (aa, ab)) in es.iter().zip(&as_) {
            if exp[last.0..*ea] != act[last.1..*aa] || !self.uuid(&exp[*ea..*eb], &act[*aa..*ab]) {
                return false;
            }
            last = (*eb, *ab);
        }
        exp[last.0..] == act[last.1..]
    }

    fn compare(&mut self, exp: &Value, act: &Value, path: &str) -> Result<(), String> {
        match (exp, act) {
            (Value::String(e), Value::String(a)) => {
                if self.string(e, a) {
                    Ok(())
                } else {
                    Err(format!("{path}: expected {e:?}, got {a:?}"))
                }
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    return Err(format!(
                        "{path}: expected {} elements, got {}: {act}",
                        e.len(),
                        a.len()
                    ));
                }
                for (i, (x, y)) in e.iter().zip(a).enumerate() {
                    self.compare(x, y, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (Value::Object(e), Value::Object(a)) => {
                let mut ek: Vec<&String> = e.keys().collect();
                let mut ak: Vec<&String> = a.keys().collect();
                ek.sort();
                ak.sort();
                if ek != ak {
                    return Err(format!("{path}: expected keys {ek:?}, got {ak:?}"));
                }
                for (k, v) in e {
                    if k == "progress" {
                        continue;
                    }
                    self.compare(v, &a[k], &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            (e, a) if e == a => Ok(()),
            (e, a) => Err(format!("{path}: expected {e}, got {a}")),
        }
    }
}

// ----- the replay ---------------------------------------------------------------------------

struct Lab {
    dir: tempfile::TempDir,
    subs: Vec<(String, String)>,
    sims: HashMap<String, Sim>,
    clients: HashMap<String, Client>,
    mapper: Mapper,
}

impl Lab {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let disk0 = sparse(dir.path(), "disk0.img", 2 << 30);
        let disk1 = sparse(dir.path(), "disk1.img", 2 << 30);
        let missing = dir.path().join("does-not-exist.img");
        let (p1, p2) = (free_port(), free_port());
        let subs = vec![
            ("/dev/loop0".to_owned(), disk0.display().to_string()),
            (
                "/var/lib/lab/disks/disk1.img".to_owned(),
                disk1.display().to_string(),
            ),
            (
                "/var/lib/lab/disks/does-not-exist.img".to_owned(),
                missing.display().to_string(),
            ),
            ("10.250.0.1".to_owned(), "127.0.0.1".to_owned()),
            ("10.250.0.99".to_owned(), "192.0.2.99".to_owned()),
            (
                "\"trsvcid\": \"4420\"".to_owned(),
                format!("\"trsvcid\": \"{p1}\""),
            ),
            (
                "\"trsvcid\":\"4420\"".to_owned(),
                format!("\"trsvcid\":\"{p1}\""),
            ),
            (
                "\"trsvcid\": \"4421\"".to_owned(),
                format!("\"trsvcid\": \"{p2}\""),
            ),
        ];
        Self {
            dir,
            subs,
            sims: HashMap::new(),
            clients: HashMap::new(),
            mapper: Mapper::default(),
        }
    }

    fn subst(&self, s: &str) -> String {
        self.subs
            .iter()
            .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
    }

    fn socket(&self, target: &str) -> PathBuf {
        self.dir.path().join(format!("{target}.sock"))
    }

    /// (Re)starts a target: a new process as far as the simulator can tell.
    fn restart(&mut self, target: &str) {
        self.clients.remove(target);
        if let Some(old) = self.sims.remove(target) {
            old.stop().unwrap();
        }
        let mut cfg = Config::with_socket(self.socket(target));
        cfg.rebuild_time = Duration::from_millis(1500);
        self.sims
            .insert(target.to_owned(), Sim::spawn(cfg).unwrap());
        self.reconnect(target);
    }

    fn reconnect(&mut self, target: &str) {
        let c = Client::connect(&self.socket(target));
        self.clients.insert(target.to_owned(), c);
    }

    fn client(&mut self, target: &str) -> &mut Client {
        if !self.sims.contains_key(target) {
            self.restart(target);
        }
        self.clients.get_mut(target).unwrap()
    }

    fn call(&mut self, target: &str, method: &str, params: Value) -> Value {
        let c = self.client(target);
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": 999_999});
        if !params.is_null() {
            req["params"] = params;
        }
        c.send_raw(req.to_string().as_bytes());
        serde_json::from_str(&c.read_line()).unwrap()
    }

    fn send_line(&mut self, target: &str, request: &str) -> String {
        let c = self.client(target);
        c.send_raw(request.as_bytes());
        c.read_line()
    }

    fn replay(&mut self, ex: &Exchange) -> Result<(), String> {
        let request = self.mapper.rewrite_request(&self.subst(&ex.request));
        let expected_text = self.subst(&ex.response);
        let target = ex.target.clone();
        let method = ex.method.clone().unwrap_or_default();
        if method == "rpc_get_methods" {
            let line = self.send_line(&target, &request);
            let got: Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            let real: Value = serde_json::from_str(&expected_text).map_err(|e| e.to_string())?;
            let real: Vec<&str> = real["result"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let got: Vec<&str> = got["result"]
                .as_array()
                .ok_or("result is not an array")?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if let Some(m) = got.iter().find(|m| !real.contains(m)) {
                return Err(format!(
                    "the simulator lists {m}, which this v24.09 request did not list"
                ));
            }
            return if got.len() + 1 >= METHODS.len() {
                Ok(())
            } else {
                Err(format!("rpc_get_methods listed only {got:?}"))
            };
        }
        let expected: Value =
            serde_json::from_str(&expected_text).map_err(|e| format!("recorded answer: {e}"))?;
        let observational = method.contains("get_");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = self.send_line(&target, &request);
            if !line.ends_with('\n') {
                return Err(format!("answer without newline: {line:?}"));
            }
            let got: Value =
                serde_json::from_str(&line).map_err(|e| format!("answer {line:?}: {e}"))?;
            let snapshot = self.mapper.map.clone();
            match self.mapper.compare(&expected, &got, "$") {
                Ok(()) => return Ok(()),
                Err(e) if !observational || Instant::now() > deadline => {
                    return Err(format!(
                        "{e}\n  request:  {request}\n  expected: {expected_text}\n  got:      {line}"
                    ));
                }
                Err(_) => {
                    self.mapper.map = snapshot;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn replay_raw(&mut self, ex: &Exchange) -> Result<(), String> {
        let request = self.subst(&ex.request);
        let expected = self.subst(&ex.response);
        let target = ex.target.clone();
        let c = self.client(&target);
        c.send_raw(request.as_bytes());
        if expected.starts_with("(no bytes") {
            return match c.read_for(Duration::from_millis(300)) {
                Err(_) => Ok(()),
                Ok(b) => Err(format!(
                    "expected nothing, got {:?}",
                    String::from_utf8_lossy(&b)
                )),
            };
        }
        if expected.starts_with("<EOF") {
            let got = c
                .read_for(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            self.reconnect(&target);
            return if got.is_empty() {
                Ok(())
            } else {
                Err(format!("expected EOF, got {got:?}"))
            };
        }
        let lines: Vec<String> = expected.lines().map(|_| c.read_line()).collect();
        for (exp_line, line) in expected.lines().zip(lines) {
            let exp: Value = serde_json::from_str(exp_line).map_err(|e| e.to_string())?;
            let got: Value = serde_json::from_str(&line).map_err(|e| format!("{line:?}: {e}"))?;
            self.mapper
                .compare(&exp, &got, "$")
                .map_err(|e| format!("{e}\n  got: {line}"))?;
        }
        Ok(())
    }

    fn replay_notification(&mut self, ex: &Exchange) -> Result<(), String> {
        let target = ex.target.clone();
        let c = self.client(&target);
        c.send_raw(ex.request.as_bytes());
        let got = c
            .read_for(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        self.reconnect(&target);
        if got == ex.response.as_bytes() {
            Ok(())
        } else {
            Err(format!("got {:?}", String::from_utf8_lossy(&got)))
        }
    }
}

/// Exchanges of flows the simulator does not implement (see the module docs), and 66: the
/// recorded -22 for a "duplicate name" on a regular file without `block_size` was SPDK failing
/// to detect a block size there (the name is checked later: -17), which the replay cannot
/// reproduce because its stand-in for `/dev/loop0` is a regular file too, so it runs with the
/// simulator's 512-byte assumption; tests/differential.rs covers both answers against real
/// targets (`aio.create.file_without_block_size`, `aio.create.dup_name_*`).
fn skipped(i: usize) -> bool {
    matches!(i, 5 | 66 | 138..=163 | 185 | 226 | 280..=321)
}

#[test]
fn replay_the_recorded_v24_09_session() {
    let exchanges = load();
    assert!(exchanges.len() > 250, "raw.jsonl looks truncated");
    let mut lab = Lab::new();
    let mut replayed = 0;
    for ex in &exchanges {
        if skipped(ex.index) {
            continue;
        }
        // Process restarts of the recorded session.
        match (ex.target.as_str(), ex.index) {
            ("A", 176 | 186 | 198 | 204) => lab.restart("A"),
            ("A", 193) => {
                // Restarted from a saved JSON config there; the simulator has no -c: re-attach instead.
                lab.restart("A");
                let disk0 = lab.subst("/dev/loop0");
                let r = lab.call(
                    "A",
                    "bdev_aio_create",
                    json!({"name": "aio0", "filename": disk0}),
                );
                assert_eq!(r["result"], json!("aio0"), "{r}");
                let r = lab.call("A", "bdev_wait_for_examine", Value::Null);
                assert_eq!(r["result"], json!(true), "{r}");
            }
            ("B", 268) => {
                // mirror0 was deleted with rpc.py between these two recorded calls.
                let r = lab.call("B", "bdev_raid_delete", json!({"name": "mirror0"}));
                assert_eq!(r["result"], json!(true), "{r}");
            }
            _ => {}
        }
        let result = match (ex.index, ex.method.as_deref()) {
            (7, _) => lab.replay_notification(ex),
            (_, None) => lab.replay_raw(ex),
            _ => lab.replay(ex),
        };
        if let Err(e) = result {
            panic!(
                "exchange {} ({} {:?}) differs from the recording: {e}",
                ex.index, ex.target, ex.method
            );
        }
        replayed += 1;
    }
    assert!(replayed > 200, "only {replayed} exchanges replayed");
}

#[test]
fn the_comparison_catches_differences() {
    let mut m = Mapper::default();
    let u1 = "d8710c73-ac4e-4396-99f3-d0b002750d17";
    let a1 = "11111111-2222-4333-8444-555555555555";
    assert!(
        m.compare(
            &json!({"uuid": u1, "n": 1}),
            &json!({"uuid": a1, "n": 1}),
            "$"
        )
        .is_ok()
    );
    assert!(
        m.compare(
            &json!({"x": format!("nqn:uuid:{u1}")}),
            &json!({"x": format!("nqn:uuid:{a1}")}),
            "$"
        )
        .is_ok()
    );
    assert!(
        m.compare(
            &json!({"uuid": u1}),
            &json!({"uuid": "99999999-2222-4333-8444-555555555555"}),
            "$"
        )
        .is_err()
    );
    assert!(m.compare(&json!({"n": 1}), &json!({"n": 2}), "$").is_err());
    assert!(
        m.compare(&json!({"n": 1}), &json!({"n": 1, "extra": true}), "$")
            .is_err()
    );
    assert!(m.compare(&json!([1, 2]), &json!([1]), "$").is_err());
    assert_eq!(
        m.rewrite_request(&format!("{{\"uuid\": \"{u1}\"}}")),
        format!("{{\"uuid\": \"{a1}\"}}")
    );
}
