//! The real `terraform` in a working directory, configured by a lab's CLI configuration
//! (the provider from the lab's filesystem mirror, offline).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bins;

/// A Terraform working directory.
pub struct Tf {
    /// The directory.
    pub dir: PathBuf,
    cli_config: PathBuf,
}

impl Tf {
    /// `root/name`, using the CLI configuration `cli_config`.
    pub fn new(root: &Path, name: &str, cli_config: &Path) -> Tf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("create the terraform directory");
        Tf {
            dir,
            cli_config: cli_config.to_path_buf(),
        }
    }

    /// Copies the `.tf` files of `examples/<example>` into the directory.
    pub fn copy_example(&self, example: &str) {
        let src = bins::repo_root().join("examples").join(example);
        for e in std::fs::read_dir(&src).expect("read the example") {
            let p = e.expect("example entry").path();
            if p.extension().is_some_and(|x| x == "tf") {
                std::fs::copy(&p, self.dir.join(p.file_name().expect("file name")))
                    .expect("copy the example");
            }
        }
    }

    /// Writes `name` into the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).expect("write a .tf file");
    }

    /// Starts terraform with `args` without waiting, as the leader of its own process group
    /// (its provider processes join it), so [`kill_group`] reaches them all.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        self.command(args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start terraform")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bins::terraform());
        c.args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG");
        c
    }

    /// Runs terraform with `args`, bounded to 10 minutes.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = self.spawn(args);
        let deadline = Instant::now() + Duration::from_secs(600);
        while child.try_wait().expect("wait for terraform").is_none() {
            if Instant::now() > deadline {
                kill_group(&mut child);
                panic!("terraform {args:?} did not finish in 10 minutes");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("terraform output")
    }

    /// Runs terraform, asserting success; stdout + stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = text(&o);
        assert!(o.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    /// Runs terraform, asserting failure; stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = text(&o);
        assert!(
            !o.status.success(),
            "terraform {args:?} should have failed:\n{text}"
        );
        text
    }

    /// `terraform init`.
    pub fn init(&self) {
        self.ok(&["init", "-input=false", "-no-color"]);
    }

    /// `terraform plan -detailed-exitcode` with `args`: asserts the plan is empty.
    pub fn assert_plan_empty(&self, args: &[&str]) {
        let mut all = vec!["plan", "-input=false", "-no-color", "-detailed-exitcode"];
        all.extend_from_slice(args);
        let o = self.run(&all);
        assert_eq!(o.status.code(), Some(0), "plan not empty:\n{}", text(&o));
    }

    /// `terraform show -json [FILE]` parsed.
    pub fn show_json(&self, file: Option<&str>) -> serde_json::Value {
        let mut args = vec!["show", "-json", "-no-color"];
        args.extend(file);
        let o = self.run(&args);
        assert!(o.status.success(), "show failed: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("terraform show -json prints JSON")
    }

    /// Refreshes (`apply -refresh-only` with `vars`) until output `name`'s `state` is
    /// `want`, for at most `within` (a raid rebuild runs in the engine after apply); that
    /// output.
    pub fn refresh_until(
        &self,
        vars: &[&str],
        name: &str,
        want: &str,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        let mut args = vec![
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-input=false",
            "-no-color",
        ];
        args.extend_from_slice(vars);
        loop {
            self.ok(&args);
            let v = self.output(name);
            if v["state"] == want {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become {want} within {within:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// An output of the state.
    pub fn output(&self, name: &str) -> serde_json::Value {
        self.show_json(None)["values"]["outputs"][name]["value"].clone()
    }
}

/// SIGKILL to terraform and every process of its group (its providers): a crash of the
/// whole front-end, as a killed CI job sees it. Waits for terraform itself.
pub fn kill_group(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The change of `address` in a plan's JSON.
pub fn resource_change<'a>(plan: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in the plan"))
}
