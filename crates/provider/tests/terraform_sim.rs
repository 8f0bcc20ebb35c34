//! The provider driven by the real terraform binary against real executors (SimHost) on
//! Unix sockets: plan-time reboot prediction, apply, an empty second plan, refresh after
//! a reboot, import, and plan-time validation that changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{SimFleet, Tf, header};
use serde_json::Value;

fn resource<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in plan"))
}

fn state_resource<'a>(state: &'a Value, address: &str) -> &'a Value {
    state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state"))
}

const CONFIG: &str = r#"
resource "v2engine_data_engine_setting" "this" {
  enabled            = true
  hugepage_limit_mib = 256
}

resource "v2engine_node_v2" "node2" {
  node       = "node-2"
  cpu_mask   = "0x3"
  depends_on = [v2engine_data_engine_setting.this]
}

resource "v2engine_storage_class" "fast" {
  name               = "fast"
  number_of_replicas = 2
}
"#;

#[test]
fn plan_predicts_reboot_apply_converges_and_reboot_refreshes() {
    let mut fleet = SimFleet::new(3);
    let tf = Tf::new(fleet.dir.path(), "main");
    tf.write(&format!("{}{CONFIG}", header(&fleet.nodes_hcl())));
    tf.init();

    // Plan: node-3 (fragmented) will need a reboot, known at plan time and warned about.
    let out = tf.ok(&["plan", "-input=false", "-no-color", "-out=plan.bin"]);
    assert!(out.contains("Node node-3 will need a reboot"), "{out}");
    assert!(
        out.contains(
            "allocated 3 of 128 hugepages; the boot configuration will allocate them at next boot"
        ),
        "{out}"
    );
    let plan = tf.show_json(Some("plan.bin"));
    let after = &resource(&plan, "v2engine_data_engine_setting.this")["change"]["after"];
    assert_eq!(
        after["reboot_required_nodes"],
        serde_json::json!(["node-3"])
    );
    assert_eq!(after["nodes"]["node-1"]["engine_state"], "running");
    assert_eq!(
        after["nodes"]["node-3"]["engine_state"],
        "waiting_for_reboot"
    );
    assert_eq!(after["nodes"]["node-3"]["target_pages"], 128);
    // node_v2 depends on the setting, so its prediction includes the setting's new value.
    let n2 = &resource(&plan, "v2engine_node_v2.node2")["change"]["after"];
    assert_eq!(n2["reboot_required"], false);
    assert_eq!(n2["engine_state"], "running");
    // Planning changed nothing on any host.
    assert!(
        fleet
            .records_snapshot()
            .iter()
            .all(|(p, _)| !p.to_string_lossy().contains("records")),
        "plan wrote records"
    );

    tf.ok(&["apply", "-input=false", "-no-color", "plan.bin"]);
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second plan is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // After the reboot, a refresh shows node-3 ready.
    fleet.node("node-3").reboot();
    tf.ok(&[
        "apply",
        "-refresh-only",
        "-auto-approve",
        "-input=false",
        "-no-color",
    ]);
    let state = tf.show_json(None);
    let s = &state_resource(&state, "v2engine_data_engine_setting.this")["values"];
    assert_eq!(s["reboot_required_nodes"], serde_json::json!([]));
    assert_eq!(s["nodes"]["node-3"]["engine_state"], "running");
    assert_eq!(s["nodes"]["node-3"]["expected_pages"], 128);
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after reboot is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Every resource imports back to the same state.
    let imp = Tf::new(fleet.dir.path(), "import");
    imp.write(&format!("{}{CONFIG}", header(&fleet.nodes_hcl())));
    imp.init();
    imp.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "v2engine_data_engine_setting.this",
        "cluster",
    ]);
    imp.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "v2engine_node_v2.node2",
        "node-2",
    ]);
    imp.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "v2engine_storage_class.fast",
        "fast",
    ]);
    let o = imp.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after import is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let a = tf.show_json(None);
    let b = imp.show_json(None);
    for addr in [
        "v2engine_data_engine_setting.this",
        "v2engine_node_v2.node2",
        "v2engine_storage_class.fast",
    ] {
        let mut x = state_resource(&a, addr)["values"].clone();
        let mut y = state_resource(&b, addr)["values"].clone();
        x["timeouts"] = Value::Null;
        y["timeouts"] = Value::Null;
        assert_eq!(x, y, "{addr} imported differently");
    }

    // Destroy removes the records (tombstones) and disables the engine.
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    let o = imp.run(&[
        "plan",
        "-input=false",
        "-no-color",
        "-refresh-only",
        "-detailed-exitcode",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the imported copy should see the objects gone"
    );
}

#[test]
fn invalid_configurations_fail_at_plan_with_paths_and_change_nothing() {
    let fleet = SimFleet::new(2);
    let before = fleet.records_snapshot();
    let cases: &[(&str, &str)] = &[
        (
            r#"resource "v2engine_storage_class" "x" {
  name       = "x"
  migratable = true
}"#,
            "migratable",
        ),
        (
            r#"resource "v2engine_storage_class" "x" {
  name        = "x"
  access_mode = "rwx"
}"#,
            "access_mode",
        ),
        (
            r#"resource "v2engine_storage_class" "x" {
  name               = "x"
  number_of_replicas = 0
}"#,
            "number_of_replicas",
        ),
        (
            r#"resource "v2engine_storage_class" "x" {
  name               = "x"
  number_of_replicas = 21
}"#,
            "number_of_replicas",
        ),
        (
            r#"resource "v2engine_node_v2" "x" {
  node = "node-9"
}"#,
            "node",
        ),
        (
            r#"resource "v2engine_data_engine_setting" "x" {
  cpu_mask = "0xZZ"
}"#,
            "cpu_mask",
        ),
        (
            r#"resource "v2engine_node_v2" "x" {
  node     = "node-1"
  cpu_mask = "3"
}"#,
            "cpu_mask",
        ),
    ];
    for (i, (body, attr)) in cases.iter().enumerate() {
        let tf = Tf::new(fleet.dir.path(), &format!("bad{i}"));
        tf.write(&format!("{}{body}\n", header(&fleet.nodes_hcl())));
        tf.init();
        let out = tf.fails(&["plan", "-input=false", "-no-color"]);
        // Terraform prints the offending attribute's line under the error.
        assert!(
            out.contains(&format!("{attr} ")) || out.contains(&format!("{attr}=")),
            "case {i}: {out}"
        );
        assert!(out.contains("Error"), "case {i}: {out}");
    }
    assert_eq!(
        before,
        fleet.records_snapshot(),
        "a failed plan changed a host"
    );
}

#[test]
fn an_unreachable_node_fails_the_plan_naming_it() {
    let mut fleet = SimFleet::new(2);
    let tf = Tf::new(fleet.dir.path(), "main");
    tf.write(&format!(
        "{}resource \"v2engine_data_engine_setting\" \"this\" {{\n  enabled = true\n}}\n",
        header(&fleet.nodes_hcl())
    ));
    tf.init();
    fleet.node("node-2").stop();
    let out = tf.fails(&["plan", "-input=false", "-no-color"]);
    assert!(out.contains("node-2"), "{out}");
    assert!(!out.contains("node node-1:"), "node-1 is fine: {out}");
}

/// A loop device over a sparse file with an ext4 filesystem, mounted; undone on drop.
struct MountedLoop {
    dev: String,
    mnt: std::path::PathBuf,
}

impl MountedLoop {
    fn new(dir: &std::path::Path) -> MountedLoop {
        let img = dir.join("mounted.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(64 << 20).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let guard = MountedLoop { dev, mnt };
        assert!(
            std::process::Command::new("mkfs.ext4")
                .args(["-q", &guard.dev])
                .status()
                .unwrap()
                .success()
        );
        assert!(
            std::process::Command::new("mount")
                .arg(&guard.dev)
                .arg(&guard.mnt)
                .status()
                .unwrap()
                .success()
        );
        guard
    }
}

impl Drop for MountedLoop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.mnt).status();
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

#[test]
fn a_mounted_disk_path_fails_at_plan_and_changes_nothing() {
    let fleet = SimFleet::new(1);
    let disk = MountedLoop::new(fleet.dir.path());
    let before = fleet.records_snapshot();
    let tf = Tf::new(fleet.dir.path(), "mounted");
    tf.write(&format!(
        "{}resource \"v2engine_block_disk\" \"d\" {{\n  node = \"node-1\"\n  name = \"d1\"\n  path = \"{}\"\n}}\n",
        header(&fleet.nodes_hcl()),
        disk.dev
    ));
    tf.init();
    let out = tf.fails(&["plan", "-input=false", "-no-color"]);
    assert!(out.contains("mounted"), "{out}");
    assert!(out.contains(&disk.dev), "{out}");
    assert!(out.contains("path"), "{out}");
    assert_eq!(
        before,
        fleet.records_snapshot(),
        "a failed plan changed a host"
    );
}

#[test]
fn a_node_that_lost_its_records_gets_them_back_at_the_next_apply() {
    let mut fleet = SimFleet::new(3);
    let tf = Tf::new(fleet.dir.path(), "resync");
    tf.write(&format!(
        "{}{}",
        header(&fleet.nodes_hcl()),
        r#"
resource "v2engine_data_engine_setting" "this" {
  enabled            = true
  hugepage_limit_mib = 256
}

resource "v2engine_storage_class" "two" {
  name               = "two"
  number_of_replicas = 2
}
"#
    ));
    tf.init();
    tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);

    // node-2's state dir loses both records (a re-imaged host, a restored backup).
    let node = fleet.node("node-2");
    node.stop();
    let records = node.dir.join("state/records");
    for f in ["data_engine_setting/cluster.json", "storage_class/two.json"] {
        std::fs::remove_file(records.join(f)).unwrap();
    }
    node.start();

    // The refresh names node-2 as out of sync; the plan writes the records back there.
    tf.ok(&["plan", "-input=false", "-no-color", "-out=resync.bin"]);
    let plan = tf.show_json(Some("resync.bin"));
    for address in [
        "v2engine_data_engine_setting.this",
        "v2engine_storage_class.two",
    ] {
        let change = &resource(&plan, address)["change"];
        assert_eq!(
            change["actions"],
            serde_json::json!(["update"]),
            "{address}: {change}"
        );
        assert_eq!(
            change["before"]["out_of_sync_nodes"],
            serde_json::json!(["node-2"]),
            "{address}: {change}"
        );
        assert_eq!(
            change["after"]["out_of_sync_nodes"],
            serde_json::json!([]),
            "{address}: {change}"
        );
    }
    tf.ok(&["apply", "-input=false", "-no-color", "resync.bin"]);
    for f in ["data_engine_setting/cluster.json", "storage_class/two.json"] {
        assert!(records.join(f).exists(), "{f} is back on node-2");
    }
    let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "plan after the repair is not empty:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}
