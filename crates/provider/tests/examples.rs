//! Every example under examples/ runs: the implemented resources' examples are planned and
//! applied (then planned again, empty) against simulated nodes with the real terraform;
//! the others are validated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::PathBuf;

use common::{SimFleet, Tf, header};

fn example(rel: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn resource_examples_apply_and_converge() {
    let fleet = SimFleet::new(2);
    for (i, rel) in [
        "examples/resources/v2engine_data_engine_setting/resource.tf",
        "examples/resources/v2engine_node_v2/resource.tf",
        "examples/resources/v2engine_storage_class/resource.tf",
        "examples/data-sources/v2engine_node/data-source.tf",
    ]
    .iter()
    .enumerate()
    {
        let tf = Tf::new(fleet.dir.path(), &format!("ex{i}"));
        tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), example(rel)));
        tf.init();
        tf.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        let o = tf.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{rel}: second plan not empty:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        tf.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    }
}

#[test]
fn provider_and_remaining_examples_validate() {
    let fleet = SimFleet::new(1);
    for (i, rel) in [
        "examples/resources/v2engine_block_disk/resource.tf",
        "examples/resources/v2engine_volume/resource.tf",
    ]
    .iter()
    .enumerate()
    {
        let tf = Tf::new(fleet.dir.path(), &format!("val{i}"));
        tf.write(&format!("{}{}", header(&fleet.nodes_hcl()), example(rel)));
        tf.init();
        tf.ok(&["validate", "-no-color"]);
    }
    for dir in ["examples/provider", "examples/quickstart"] {
        let tf = Tf::new(fleet.dir.path(), &dir.replace('/', "_"));
        for entry in std::fs::read_dir(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(dir),
        )
        .unwrap()
        {
            let p = entry.unwrap().path();
            std::fs::copy(&p, tf.dir.join(p.file_name().unwrap())).unwrap();
        }
        tf.init();
        tf.ok(&["validate", "-no-color"]);
    }
}
