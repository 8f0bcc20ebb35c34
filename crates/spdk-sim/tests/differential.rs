//! The sim-vs-real differential: one request corpus (`tests/fixtures/differential.json`) sent to
//! spdk-sim and to a real spdk_tgt, the answers compared step by step.
//!
//! Each lane (the simulator, or a real build) runs two targets: `A` exports over NVMe-oF/TCP on
//! 127.0.0.1, `B` attaches. The corpus names temp files, ports and saved results with
//! placeholders (`{{file:NAME}}`, `{{port:NAME}}`, `{{var:NAME}}`, `{{dir}}`); answers are
//! normalised back to those placeholders, then every UUID becomes `<uuid>` and the values of the
//! corpus' `volatile` keys become their type. What is compared: success or failure, error code
//! and message, and the result (whole value, or its shape, or "the sim's array is a subset of
//! the real one", per step).
//!
//! `sim_matches_real_spdk` needs a real build (`V2ENGINE_SPDK_DIR`); `corpus_runs_on_the_sim`
//! runs everywhere and checks that the corpus covers every method `spdk-rpc` sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CORPUS: &str = include_str!("fixtures/differential.json");

/// How long a target may take to answer its first `spdk_get_version`.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long one answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The corpus.

struct Corpus {
    methods: Vec<String>,
    cannot_fail: BTreeSet<String>,
    files: BTreeMap<String, u64>,
    ports: Vec<String>,
    volatile: BTreeSet<String>,
    /// Per real version: keys the sim does not model yet for that version (left out of the
    /// comparison, listed so the gap is visible).
    sim_gaps: BTreeMap<String, BTreeSet<String>>,
    steps: Vec<Step>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// The whole normalised answer.
    Value,
    /// Success or failure, error code and message; the result's keys and types.
    Shape,
    /// The result is an array; every element the sim lists is in the real one.
    Subset,
}

struct Step {
    name: String,
    on: String,
    method: String,
    params: Option<Value>,
    save: Option<(String, String)>,
    delay: Duration,
    mode: Mode,
    /// The step's answer is known to differ between real versions and is only compared on these.
    versions: Option<Vec<String>>,
    /// The real target's normalised answer per version ("24.09", "26.05"), recorded where the
    /// sim once differed: checked against the sim answering as that version on every run
    /// (regression) and against the real target on the real lane.
    expect: BTreeMap<String, Value>,
}

fn parse_corpus() -> Corpus {
    let v: Value = serde_json::from_str(CORPUS).expect("differential.json is JSON");
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("corpus: `{key}` must be an array"))
            .iter()
            .map(|s| s.as_str().expect("corpus: string").to_owned())
            .collect()
    };
    let files = v["files"]
        .as_object()
        .expect("corpus: `files` object")
        .iter()
        .map(|(k, s)| (k.clone(), s.as_u64().expect("corpus: file size")))
        .collect();
    let steps = v["steps"]
        .as_array()
        .expect("corpus: `steps` array")
        .iter()
        .filter(|s| s.get("comment").is_none() || s.get("method").is_some())
        .map(parse_step)
        .collect();
    Corpus {
        methods: strings("methods"),
        cannot_fail: strings("cannot_fail").into_iter().collect(),
        files,
        ports: strings("ports"),
        volatile: strings("volatile").into_iter().collect(),
        sim_gaps: v["sim_gaps"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .map(|(k, keys)| {
                        let set = keys
                            .as_array()
                            .expect("sim_gaps: arrays of keys")
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect();
                        (k.clone(), set)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        steps,
    }
}

fn parse_step(s: &Value) -> Step {
    let name = s["name"].as_str().expect("step: name").to_owned();
    let field = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
    let mode = match field("compare").as_deref() {
        None | Some("value") => Mode::Value,
        Some("shape") => Mode::Shape,
        Some("subset") => Mode::Subset,
        Some(other) => panic!("step {name}: unknown compare mode {other}"),
    };
    let save = s.get("save").map(|sv| {
        let var = sv["var"].as_str().expect("save.var").to_owned();
        let ptr = sv.get("pointer").and_then(Value::as_str).unwrap_or("");
        (var, ptr.to_owned())
    });
    Step {
        on: field("on").unwrap_or_else(|| "A".to_owned()),
        method: field("method").unwrap_or_else(|| panic!("step {name}: method")),
        params: s.get("params").cloned(),
        save,
        delay: Duration::from_millis(s.get("delay_ms").and_then(Value::as_u64).unwrap_or(0)),
        mode,
        versions: s.get("versions").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }),
        expect: s
            .get("expect")
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        name,
    }
}

// ---------------------------------------------------------------------------------------------
// Targets.

#[derive(Clone)]
enum Kind {
    /// The spdk-sim binary, answering as this version.
    Sim { version: String },
    /// A real spdk_tgt.
    Real { spdk_tgt: PathBuf },
}

struct Target {
    name: String,
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Target {
    fn start(kind: &Kind, dir: &Path, name: &str) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let sock = socket.to_str().unwrap().to_owned();
        let mut cmd = match kind {
            Kind::Sim { version } => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_spdk-sim"));
                c.args(["-r", &sock, "--version-string", version]);
                c.args([
                    "--sim-rebuild-ms",
                    "100",
                    "--sim-aio-file-block-size",
                    "none",
                ]);
                c
            }
            Kind::Real { spdk_tgt } => {
                let mut c = Command::new(spdk_tgt);
                c.args(["--no-huge", "-s", "1024", "-u", "--disable-cpumask-locks"]);
                c.args(["-r", &sock]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start target {name}: {e}"));
        let mut t = Self {
            name: name.to_owned(),
            child,
            socket,
            log,
        };
        t.wait_ready();
        t
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "target {} exited during start ({status}); log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let answered = Client::connect(&self.socket)
                .ok()
                .and_then(|mut c| c.call("spdk_get_version", None).ok())
                .is_some_and(|v| v.get("result").is_some());
            if answered {
                return;
            }
            assert!(
                start.elapsed() < START_LIMIT,
                "target {} did not answer within {START_LIMIT:?}; log:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // SIGTERM first (spdk_tgt cleans up its shared memory files), then SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking JSON-RPC client over the target's Unix socket.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    fn connect(path: &Path) -> std::io::Result<Self> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(ANSWER_LIMIT))?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            next_id: 1,
        })
    }

    /// Sends one request; the whole answer object, or why there is none.
    fn call(&mut self, method: &str, params: Option<&Value>) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if let Some(p) = params {
            req["params"] = p.clone();
        }
        self.writer
            .write_all(req.to_string().as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("no answer: {e}"))?;
        if line.is_empty() {
            return Err("connection closed without an answer".to_owned());
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("answer is not JSON ({e}): {line}"))?;
        if v["id"] != json!(id) {
            return Err(format!("answer has id {} instead of {id}: {line}", v["id"]));
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// Running a lane.

/// One step's normalised answer: `{"result": ...}`, `{"error": {"code", "message"}}` or
/// `{"no_answer": why}`.
type Answer = Value;

struct Lane {
    label: String,
    version: String,
    answers: Vec<Answer>,
    elapsed: Duration,
}

fn run_lane(corpus: &Corpus, kind: &Kind, label: &str) -> Lane {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut subst: Vec<(String, String)> = vec![];
    for (name, size) in &corpus.files {
        let p = dir.path().join(format!("{name}.img"));
        std::fs::File::create(&p).unwrap().set_len(*size).unwrap();
        subst.push((
            format!("{{{{file:{name}}}}}"),
            p.to_str().unwrap().to_owned(),
        ));
    }
    for name in &corpus.ports {
        subst.push((format!("{{{{port:{name}}}}}"), free_port().to_string()));
    }
    subst.push((
        "{{dir}}".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    ));
    let targets = [
        Target::start(kind, dir.path(), "A"),
        Target::start(kind, dir.path(), "B"),
    ];
    let mut clients: BTreeMap<String, Client> = targets
        .iter()
        .map(|t| {
            let c = Client::connect(&t.socket)
                .unwrap_or_else(|e| panic!("connect to target {}: {e}", t.name));
            (t.name.clone(), c)
        })
        .collect();
    let version = clients
        .get_mut("A")
        .unwrap()
        .call("spdk_get_version", None)
        .ok()
        .and_then(|v| v["result"]["version"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut vars: Vec<(String, String)> = vec![];
    let mut answers = vec![];
    for step in &corpus.steps {
        std::thread::sleep(step.delay);
        let all: Vec<(String, String)> = subst.iter().chain(vars.iter()).cloned().collect();
        let params = match step
            .params
            .as_ref()
            .map(|p| substitute(p, &all))
            .transpose()
        {
            Ok(p) => p,
            Err(why) => {
                answers.push(json!({"no_answer": format!("not sent: {why}")}));
                continue;
            }
        };
        let client = clients
            .get_mut(&step.on)
            .unwrap_or_else(|| panic!("step {}: no target {}", step.name, step.on));
        let answer = match client.call(&step.method, params.as_ref()) {
            Ok(v) => {
                if let (Some((var, ptr)), Some(result)) = (&step.save, v.get("result"))
                    && let Some(s) = result.pointer(ptr).and_then(Value::as_str)
                {
                    vars.push((format!("{{{{var:{var}}}}}"), s.to_owned()));
                    // SPDK shows a UUID as an NGUID too (32 upper-case hex digits).
                    let nguid = s.replace('-', "").to_ascii_uppercase();
                    if nguid.len() == 32 {
                        vars.push((format!("{{{{nguid:{var}}}}}"), nguid));
                    }
                }
                match (v.get("result"), v.get("error")) {
                    (Some(r), None) => json!({"result": r}),
                    (None, Some(e)) => {
                        json!({"error": {"code": e["code"], "message": e["message"]}})
                    }
                    _ => json!({"no_answer": format!("malformed answer {v}")}),
                }
            }
            Err(why) => json!({"no_answer": why}),
        };
        let all: Vec<(String, String)> = subst.iter().chain(vars.iter()).cloned().collect();
        answers.push(normalise(&answer, &all, &corpus.volatile));
    }
    drop(clients);
    drop(targets);
    Lane {
        label: label.to_owned(),
        version,
        answers,
        elapsed: started.elapsed(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replaces placeholders in every string of `v`; the first placeholder left unresolved (a
/// `save` whose step failed) is the error.
fn substitute(v: &Value, subst: &[(String, String)]) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => {
            let mut out = s.clone();
            for (ph, real) in subst {
                out = out.replace(ph, real);
            }
            if out.contains("{{") {
                return Err(format!("unresolved placeholder in {s:?}"));
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, subst))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, subst)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Placeholders back in, then UUIDs out, then volatile values replaced by their type.
fn normalise(v: &Value, subst: &[(String, String)], volatile: &BTreeSet<String>) -> Value {
    let mut by_len: Vec<&(String, String)> = subst.iter().collect();
    by_len.sort_by_key(|(_, real)| std::cmp::Reverse(real.len()));
    fn walk(
        v: &Value,
        key: Option<&str>,
        subst: &[&(String, String)],
        volatile: &BTreeSet<String>,
    ) -> Value {
        if key.is_some_and(|k| volatile.contains(k)) {
            return Value::String(format!("<{}>", type_name(v)));
        }
        match v {
            Value::String(s) => {
                let mut out = s.clone();
                for (ph, real) in subst {
                    if !real.is_empty() {
                        out = out.replace(real.as_str(), ph);
                    }
                }
                Value::String(mask_nguids(&mask_uuids(&out)))
            }
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| walk(x, None, subst, volatile)).collect())
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), walk(x, Some(k), subst, volatile)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(v, None, &by_len, volatile)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every `8-4-4-4-12` hex group becomes `<uuid>`.
fn mask_uuids(s: &str) -> String {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let is_uuid_at = |i: usize| -> bool {
        let mut p = i;
        for (g, len) in GROUPS.iter().enumerate() {
            if g > 0 {
                if b.get(p) != Some(&b'-') {
                    return false;
                }
                p += 1;
            }
            for _ in 0..*len {
                match b.get(p) {
                    Some(c) if c.is_ascii_hexdigit() => p += 1,
                    _ => return false,
                }
            }
        }
        !b.get(p).is_some_and(u8::is_ascii_hexdigit)
    };
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_hexdigit();
        if boundary && is_uuid_at(i) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every standalone run of exactly 32 hex digits (an NGUID) becomes `<nguid>`.
fn mask_nguids(s: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 32 {
            out.push_str("<nguid>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in s.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// The type tree of a value: objects keep their keys, arrays their elements' shapes.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), shape(x))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        other => Value::String(type_name(other).to_owned()),
    }
}

/// Path-wise differences between `sim` and `real`.
fn diff(path: &str, sim: &Value, real: &Value, out: &mut Vec<String>) {
    diff_except(path, sim, real, &BTreeSet::new(), out);
}

/// [`diff`] leaving out the keys in `gaps`.
fn diff_except(
    path: &str,
    sim: &Value,
    real: &Value,
    gaps: &BTreeSet<String>,
    out: &mut Vec<String>,
) {
    match (sim, real) {
        (Value::Object(s), Value::Object(r)) => {
            for (k, rv) in r.iter().filter(|(k, _)| !gaps.contains(*k)) {
                match s.get(k) {
                    Some(sv) => diff_except(&format!("{path}/{k}"), sv, rv, gaps, out),
                    None => out.push(format!("{path}/{k}: missing in sim (real: {rv})")),
                }
            }
            for (k, sv) in s.iter().filter(|(k, _)| !gaps.contains(*k)) {
                if !r.contains_key(k) {
                    out.push(format!("{path}/{k}: only in sim ({sv})"));
                }
            }
        }
        (Value::Array(s), Value::Array(r)) => {
            if s.len() != r.len() {
                out.push(format!(
                    "{path}: sim has {} elements, real {}",
                    s.len(),
                    r.len()
                ));
            }
            for (i, (sv, rv)) in s.iter().zip(r).enumerate() {
                diff_except(&format!("{path}/{i}"), sv, rv, gaps, out);
            }
        }
        _ if sim != real => out.push(format!("{path}: sim {sim}, real {real}")),
        _ => {}
    }
}

fn compare(step: &Step, sim: &Answer, real: &Answer) -> Vec<String> {
    compare_except(step, sim, real, &BTreeSet::new())
}

fn compare_except(
    step: &Step,
    sim: &Answer,
    real: &Answer,
    gaps: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = vec![];
    if sim.get("no_answer").is_some() || real.get("no_answer").is_some() {
        if sim != real {
            out.push(format!("answers: sim {sim}, real {real}"));
        }
        return out;
    }
    match (sim.get("result"), real.get("result")) {
        (Some(s), Some(r)) => match step.mode {
            Mode::Value => diff_except("", s, r, gaps, &mut out),
            Mode::Shape => diff_except("", &shape(s), &shape(r), gaps, &mut out),
            Mode::Subset => {
                let (Some(sa), Some(ra)) = (s.as_array(), r.as_array()) else {
                    out.push(format!("subset: both must be arrays: sim {s}, real {r}"));
                    return out;
                };
                for x in sa {
                    if !ra.contains(x) {
                        out.push(format!("sim lists {x}, real does not"));
                    }
                }
            }
        },
        (None, None) => diff("/error", &sim["error"], &real["error"], &mut out),
        _ => out.push(format!("outcome: sim {sim}, real {real}")),
    }
    out
}

/// Every step's differences, as a report; empty when the lanes agree.
fn differences(corpus: &Corpus, sim: &Lane, real: &Lane) -> Vec<String> {
    let minor = real.version.trim_start_matches("SPDK v");
    let no_gaps = BTreeSet::new();
    let gaps = corpus
        .sim_gaps
        .iter()
        .find(|(v, _)| minor.starts_with(v.as_str()))
        .map_or(&no_gaps, |(_, g)| g);
    let mut report = vec![];
    for (i, step) in corpus.steps.iter().enumerate() {
        if let Some(vs) = &step.versions
            && !vs.iter().any(|v| minor.starts_with(v.as_str()))
        {
            continue;
        }
        let d = compare_except(step, &sim.answers[i], &real.answers[i], gaps);
        if !d.is_empty() {
            let mut text = format!(
                "step {i} `{}` ({} on {}, params {}):",
                step.name,
                step.method,
                step.on,
                step.params
                    .as_ref()
                    .map_or("none".to_owned(), Value::to_string)
            );
            for line in d {
                text.push_str("\n    ");
                text.push_str(&line);
            }
            report.push(text);
        }
    }
    report
}

// ---------------------------------------------------------------------------------------------
// Coverage: the methods spdk-rpc sends, read from its source.

fn spdk_rpc_methods() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spdk-rpc/src");
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for line in text.lines() {
                    let l = line.trim();
                    let typed = l.starts_with("rpc_request!(") && !l.contains("$method");
                    let by_hand = l.starts_with("const METHOD: &'static str = \"");
                    let method = (typed || by_hand).then(|| l.split('"').nth(1)).flatten();
                    if let Some(m) = method {
                        found.insert(m.to_owned());
                    }
                }
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no methods found in {} (did the rpc_request! macro change?)",
        root.display()
    );
    found
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn corpus_covers_every_method_spdk_rpc_sends() {
    let corpus = parse_corpus();
    let listed: BTreeSet<String> = corpus.methods.iter().cloned().collect();
    let sent = spdk_rpc_methods();
    let missing: Vec<_> = sent.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "spdk-rpc sends methods the corpus' `methods` list lacks (add them and their steps): {missing:?}"
    );
    let mut names = BTreeSet::new();
    for s in &corpus.steps {
        assert!(names.insert(&s.name), "step name {} twice", s.name);
    }
    for m in &listed {
        let n = corpus.steps.iter().filter(|s| &s.method == m).count();
        let needed = if corpus.cannot_fail.contains(m) { 1 } else { 2 };
        assert!(
            n >= needed,
            "method {m}: the corpus has {n} steps, needs a success and a failure"
        );
    }
}

/// The steps whose `expect` for `version` the lane's answers do not match.
fn expectation_misses(corpus: &Corpus, lane: &Lane, version: &str) -> Vec<String> {
    corpus
        .steps
        .iter()
        .zip(&lane.answers)
        .filter_map(|(step, answer)| {
            let expect = step.expect.get(version)?;
            let d = compare(step, answer, expect);
            (!d.is_empty()).then(|| format!("step `{}`: {}", step.name, d.join("; ")))
        })
        .collect()
}

#[test]
fn corpus_runs_on_the_sim() {
    let corpus = parse_corpus();
    for version in ["24.09", "26.05"] {
        let lane = run_lane(
            &corpus,
            &Kind::Sim {
                version: format!("SPDK v{version}"),
            },
            "spdk-sim",
        );
        let mut ok = BTreeSet::new();
        let mut failed = BTreeSet::new();
        for (step, answer) in corpus.steps.iter().zip(&lane.answers) {
            assert!(
                answer.get("no_answer").is_none(),
                "step {} ({}): the sim as v{version} gave no answer: {answer}",
                step.name,
                step.method
            );
            if answer.get("result").is_some() {
                ok.insert(step.method.clone());
            } else {
                failed.insert(step.method.clone());
            }
        }
        let misses = expectation_misses(&corpus, &lane, version);
        assert!(
            misses.is_empty(),
            "the sim as v{version} no longer answers as the real v{version} did (`expect`):\n{}",
            misses.join("\n")
        );
        for m in &corpus.methods {
            assert!(ok.contains(m), "no step of {m} succeeded on the sim");
            assert!(
                failed.contains(m) || corpus.cannot_fail.contains(m),
                "no step of {m} failed on the sim"
            );
        }
        eprintln!(
            "{} steps on the sim as v{version} in {:?}",
            corpus.steps.len(),
            lane.elapsed
        );
    }
}

#[test]
#[ignore = "real SPDK lane: scripts/test.sh runs it with V2ENGINE_SPDK_DIR"]
fn sim_matches_real_spdk() {
    let dir = std::env::var_os("V2ENGINE_SPDK_DIR").unwrap_or_else(|| {
        panic!("V2ENGINE_SPDK_DIR is not set: point it at a directory with bin/spdk_tgt, e.g. /work/shared/spdk/real/v26.05")
    });
    let spdk_tgt = Path::new(&dir).join("bin/spdk_tgt");
    assert!(
        spdk_tgt.is_file(),
        "V2ENGINE_SPDK_DIR={}: {} does not exist",
        Path::new(&dir).display(),
        spdk_tgt.display()
    );
    let corpus = parse_corpus();
    let real = run_lane(&corpus, &Kind::Real { spdk_tgt }, "real");
    assert!(
        real.version.starts_with("SPDK v"),
        "the real target did not report its version"
    );
    let sim = run_lane(
        &corpus,
        &Kind::Sim {
            version: real.version.clone(),
        },
        "spdk-sim",
    );
    if let Ok(path) = std::env::var("V2ENGINE_DIFF_DUMP") {
        let dump: Vec<Value> = corpus
            .steps
            .iter()
            .zip(sim.answers.iter().zip(&real.answers))
            .map(|(s, (a, b))| json!({"step": s.name, "sim": a, "real": b}))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&dump).unwrap()).unwrap();
    }
    eprintln!(
        "{} steps: {} {} in {:?}, {} {} in {:?}",
        corpus.steps.len(),
        real.label,
        real.version,
        real.elapsed,
        sim.label,
        sim.version,
        sim.elapsed
    );
    let mut report = differences(&corpus, &sim, &real);
    let minor = real.version.trim_start_matches("SPDK v");
    if let Some(v) = ["24.09", "26.05"]
        .into_iter()
        .find(|v| minor.starts_with(v))
    {
        for miss in expectation_misses(&corpus, &real, v) {
            report.push(format!(
                "the real target no longer answers as `expect` says: {miss}"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "spdk-sim ({}) differs from {} in {} of {} steps:\n{}",
        sim.version,
        real.version,
        report.len(),
        corpus.steps.len(),
        report.join("\n")
    );
}

#[test]
fn normalising_masks_uuids_and_placeholders() {
    let subst = vec![("{{file:d}}".to_owned(), "/tmp/x/d.img".to_owned())];
    let vol: BTreeSet<String> = ["cntlid".to_owned()].into_iter().collect();
    let v =
        json!({"a": "lvs/0b6f0a2e-1f2e-4c5d-8e9f-0123456789ab", "f": "/tmp/x/d.img", "cntlid": 3});
    assert_eq!(
        normalise(&v, &subst, &vol),
        json!({"a": "lvs/<uuid>", "f": "{{file:d}}", "cntlid": "<integer>"})
    );
    let mut out = vec![];
    diff(
        "",
        &json!({"a": 1, "b": [1]}),
        &json!({"a": 2, "c": true, "b": []}),
        &mut out,
    );
    assert_eq!(out.len(), 3, "{out:?}");
}
