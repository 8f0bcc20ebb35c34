//! Acceptance test: the real Terraform CLI drives the `filestore` example
//! provider through plan, apply, update, replacement, import, data sources,
//! validation errors, warnings, unknown values and destroy — fully offline,
//! via a `dev_overrides` CLI configuration in a fresh temporary directory.
//!
//! Needs Terraform at `/usr/local/bin/terraform` (or `$TERRAFORM`); fails
//! with a clear message if it is missing.

// Test helpers outside #[test] functions: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
const SOURCE: &str = "example.com/v2engine/filestore";

fn terraform_binary() -> PathBuf {
    let path = std::env::var_os("TERRAFORM")
        .map_or_else(|| PathBuf::from("/usr/local/bin/terraform"), PathBuf::from);
    assert!(
        path.is_file(),
        "the Terraform CLI is required for this test but was not found at {} \
         (install Terraform 1.11 there or set TERRAFORM to its path)",
        path.display()
    );
    path
}

/// Builds the example provider and returns the path of its binary.
fn build_example() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "v2engine-tfplugin",
            "--example",
            "filestore",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "building the filestore example failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "filestore")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable for the filestore example")
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A Terraform working directory with its own CLI configuration.
struct Workspace {
    terraform: PathBuf,
    dir: PathBuf,
    cli_config: PathBuf,
    socket_dir: PathBuf,
}

impl Workspace {
    fn run(&self, args: &[&str]) -> Outcome {
        let mut child = Command::new(&self.terraform)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("PLUGIN_UNIX_SOCKET_DIR", &self.socket_dir)
            .env_remove("TF_LOG")
            .env_remove("TF_CLI_ARGS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for terraform") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("terraform {args:?} did not finish within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let outcome = Outcome {
            code: status.code().unwrap_or(-1),
            stdout: out_reader.join().expect("stdout reader"),
            stderr: err_reader.join().expect("stderr reader"),
        };
        eprintln!("$ terraform {}  -> exit {}", args.join(" "), outcome.code);
        outcome
    }

    /// Runs and asserts the exit code.
    fn expect(&self, args: &[&str], code: i32) -> Outcome {
        let outcome = self.run(args);
        assert_eq!(
            outcome.code, code,
            "terraform {args:?} exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            outcome.code, outcome.stdout, outcome.stderr
        );
        outcome
    }

    fn write_config(&self, resources: &str, store: &Path) {
        let config = format!(
            r#"terraform {{
  required_providers {{
    filestore = {{ source = "{SOURCE}" }}
  }}
}}

provider "filestore" {{
  directory = "{}"
}}
{resources}"#,
            store.display()
        );
        std::fs::write(self.dir.join("main.tf"), config).expect("write main.tf");
    }

    fn show_json(&self, extra: &[&str]) -> Json {
        let mut args = vec!["show", "-json", "-no-color"];
        args.extend_from_slice(extra);
        let outcome = self.expect(&args, 0);
        serde_json::from_str(&outcome.stdout).expect("terraform show -json output is JSON")
    }
}

fn stored(store: &Path, name: &str) -> Json {
    let bytes = std::fs::read(store.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("item {name}: {e}"));
    serde_json::from_slice(&bytes).expect("item file is JSON")
}

fn resource<'a>(values: &'a Json, address: &str) -> &'a Json {
    values["values"]["root_module"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state: {values}"))
}

fn change<'a>(plan: &'a Json, address: &str) -> &'a Json {
    plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .find(|r| r["address"] == address)
        .map(|r| &r["change"])
        .unwrap_or_else(|| panic!("{address} not in plan: {plan}"))
}

const INITIAL: &str = r#"
resource "filestore_item" "a" {
  name    = "alpha"
  content = "hello"
  labels  = { team = "storage" }

  annotation {
    key   = "owner"
    value = "ops"
  }
  annotation {
    key = "reviewed"
  }
}

resource "filestore_item" "b" {
  name    = "beta"
  content = filestore_item.a.id
}

resource "filestore_item" "empty" {
  name = "gamma"
}
"#;

const UPDATED: &str = r#"
resource "filestore_item" "a" {
  name    = "alpha"
  content = "hello again\nsecond line"
  labels  = { team = "storage" }

  annotation {
    key   = "owner"
    value = "ops"
  }
  annotation {
    key = "reviewed"
  }
}

resource "filestore_item" "b" {
  name    = "beta"
  content = filestore_item.a.id
}

resource "filestore_item" "empty" {
  name = "gamma2"
}
"#;

const IMPORTED: &str = r#"
resource "filestore_item" "imported" {
  name    = "delta"
  content = "from outside"
}

data "filestore_item" "d" {
  name = "delta"
}
"#;

const INVALID: &str = r#"
resource "filestore_item" "bad" {
  name    = "Bad Name!"
  content = "x"
}
"#;

#[test]
fn terraform_drives_the_filestore_provider() {
    let terraform = terraform_binary();
    let provider = build_example();

    let root = tempfile::tempdir().expect("temp dir");
    let plugins = root.path().join("plugins");
    let store = root.path().join("store");
    let work = root.path().join("work");
    let socket_dir = root.path().join("sockets");
    for dir in [&plugins, &work, &socket_dir] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::copy(&provider, plugins.join("terraform-provider-filestore"))
        .expect("install provider");
    let cli_config = root.path().join("terraform.rc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            plugins.display()
        ),
    )
    .expect("write CLI config");
    let ws = Workspace {
        terraform,
        dir: work.clone(),
        cli_config,
        socket_dir: socket_dir.clone(),
    };
    ws.expect(&["version"], 0);

    // Plan: three creations; b's content is a's id, unknown until apply; a
    // warning for the empty item.
    ws.write_config(INITIAL, &store);
    let plan = ws.expect(
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            "-out=tfplan",
        ],
        2,
    );
    assert!(
        plan.all()
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.all()
    );
    assert!(
        plan.all().contains("Warning: Item has no content"),
        "{}",
        plan.all()
    );
    assert!(plan.all().contains("(known after apply)"), "{}", plan.all());
    let planned = ws.show_json(&["tfplan"]);
    let b = change(&planned, "filestore_item.b");
    assert_eq!(b["after_unknown"]["content"], true, "{b}");
    assert_eq!(b["after_unknown"]["id"], true, "{b}");
    assert_eq!(b["after_unknown"]["stats"], true, "{b}");
    let a = change(&planned, "filestore_item.a");
    assert_eq!(a["after"]["size"], 5, "{a}");
    assert_eq!(a["after"]["content"], "hello", "{a}");
    assert_eq!(
        a["after"]["stats"],
        serde_json::json!({"bytes": 5, "lines": 1}),
        "{a}"
    );
    assert_eq!(a["after"]["labels"]["team"], "storage", "{a}");
    assert_eq!(a["after"]["annotation"][0]["value"], "ops", "{a}");
    assert_eq!(a["after"]["annotation"][1]["value"], Json::Null, "{a}");

    // Apply the saved plan: b gets a's real id.
    ws.expect(&["apply", "-input=false", "-no-color", "tfplan"], 0);
    let alpha_id = stored(&store, "alpha")["id"]
        .as_str()
        .expect("alpha id")
        .to_owned();
    assert!(alpha_id.starts_with("alpha-"), "{alpha_id}");
    assert_eq!(stored(&store, "beta")["content"], alpha_id.as_str());
    assert_eq!(stored(&store, "gamma")["content"], Json::Null);

    // Nothing to do on a second plan.
    let second = ws.expect(
        &["plan", "-input=false", "-no-color", "-detailed-exitcode"],
        0,
    );
    assert!(second.all().contains("No changes."), "{}", second.all());

    // Update in place and replace on a name change.
    ws.write_config(UPDATED, &store);
    let plan = ws.expect(
        &["plan", "-input=false", "-no-color", "-detailed-exitcode"],
        2,
    );
    let text = plan.all();
    assert!(
        text.contains("filestore_item.a will be updated in-place"),
        "{text}"
    );
    assert!(
        text.contains("filestore_item.empty must be replaced"),
        "{text}"
    );
    assert!(text.contains("# forces replacement"), "{text}");
    assert!(
        text.contains("Plan: 1 to add, 1 to change, 1 to destroy."),
        "{text}"
    );
    ws.expect(&["apply", "-input=false", "-no-color", "-auto-approve"], 0);
    assert_eq!(
        stored(&store, "alpha")["content"],
        "hello again\nsecond line"
    );
    assert_eq!(
        stored(&store, "alpha")["id"],
        alpha_id.as_str(),
        "update keeps the id"
    );
    assert!(
        !store.join("gamma.json").exists(),
        "the replaced item is deleted"
    );
    assert!(store.join("gamma2.json").exists());
    ws.expect(
        &["plan", "-input=false", "-no-color", "-detailed-exitcode"],
        0,
    );

    // Import an item created outside Terraform; read it as a data source too.
    std::fs::write(
        store.join("delta.json"),
        r#"{"id":"delta-1","content":"from outside"}"#,
    )
    .expect("write delta");
    ws.write_config(&format!("{UPDATED}{IMPORTED}"), &store);
    let missing = ws.expect(
        &[
            "import",
            "-input=false",
            "-no-color",
            "filestore_item.imported",
            "nosuch",
        ],
        1,
    );
    assert!(
        missing.all().contains("Cannot import non-existent item"),
        "{}",
        missing.all()
    );
    ws.expect(
        &[
            "import",
            "-input=false",
            "-no-color",
            "filestore_item.imported",
            "delta",
        ],
        0,
    );
    let after_import = ws.expect(
        &["plan", "-input=false", "-no-color", "-detailed-exitcode"],
        0,
    );
    assert!(
        after_import.all().contains("No changes."),
        "{}",
        after_import.all()
    );

    let state = ws.show_json(&[]);
    let imported = &resource(&state, "filestore_item.imported")["values"];
    assert_eq!(imported["id"], "delta-1");
    assert_eq!(imported["content"], "from outside");
    assert_eq!(imported["size"], 12);
    let data = &resource(&state, "data.filestore_item.d")["values"];
    assert_eq!(data["content"], "from outside");
    assert_eq!(data["id"], "delta-1");
    let a = &resource(&state, "filestore_item.a")["values"];
    assert_eq!(a["id"], alpha_id.as_str());
    assert_eq!(a["size"], 23);
    assert_eq!(a["stats"], serde_json::json!({"bytes": 23, "lines": 2}));
    assert_eq!(a["labels"], serde_json::json!({"team": "storage"}));
    assert_eq!(
        a["annotation"][1],
        serde_json::json!({"key": "reviewed", "value": null})
    );
    assert_eq!(
        resource(&state, "filestore_item.b")["values"]["content"],
        alpha_id.as_str()
    );
    assert_eq!(
        resource(&state, "filestore_item.empty")["values"]["name"],
        "gamma2"
    );

    // A validation error points at the attribute in the configuration.
    let bad_dir = root.path().join("bad");
    std::fs::create_dir_all(&bad_dir).expect("mkdir bad");
    let bad = Workspace { dir: bad_dir, ..ws };
    bad.write_config(INVALID, &store);
    let invalid = bad.expect(&["plan", "-input=false", "-no-color"], 1);
    let text = invalid.all();
    assert!(text.contains("Error: Invalid item name"), "{text}");
    assert!(text.contains(r#"with filestore_item.bad"#), "{text}");
    assert!(
        text.contains(r#"name    = "Bad Name!""#),
        "the error shows the attribute's line: {text}"
    );
    let ws = Workspace { dir: work, ..bad };

    // Destroy everything managed; the data source's item goes with the import.
    ws.expect(
        &["destroy", "-input=false", "-no-color", "-auto-approve"],
        0,
    );
    let left: Vec<_> = std::fs::read_dir(&store)
        .expect("read store")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "items left after destroy: {left:?}");
    ws.expect(
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            "-destroy",
        ],
        0,
    );

    // Every plugin process removed its socket directory on exit.
    let sockets: Vec<_> = std::fs::read_dir(&socket_dir)
        .expect("read socket dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        sockets.is_empty(),
        "plugin socket directories left behind: {sockets:?}"
    );
}
