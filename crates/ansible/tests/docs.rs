//! The collection's generated files are up to date with the model, and the real
//! `ansible-doc` documents every module with the options the module accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use ansible::Module;
use ansible::argspec::{self, OptType};
use common::{Ansible, repo_root, stage_collection};
use serde_json::Value;

#[test]
fn checked_in_docs_and_runtime_are_up_to_date_with_the_model() {
    let root = repo_root().join("ansible");
    if let Err(e) = ansible::docs::check(&root) {
        panic!("{e}");
    }
}

#[test]
fn ansible_doc_documents_every_module_as_the_module_checks_it() {
    let tmp = tempfile::tempdir().unwrap();
    stage_collection(tmp.path());
    let ans = Ansible::new(tmp.path(), tmp.path());
    for spec in argspec::all().unwrap() {
        let fqcn = spec.module.fqcn();
        let o = ans.output("ansible-doc", &["-j", &fqcn], &[]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "ansible-doc {fqcn} failed: {stderr}");
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        let doc = &j[&fqcn]["doc"];
        assert_eq!(doc["module"], spec.module.name());
        assert_eq!(doc["collection"], "v2engine.storage");
        let options = doc["options"].as_object().unwrap();
        let mut documented: Vec<&String> = options.keys().collect();
        documented.sort();
        let mut accepted: Vec<&String> = spec.options.iter().map(|o| &o.name).collect();
        accepted.sort();
        assert_eq!(documented, accepted, "{fqcn}: documented options");
        for opt in &spec.options {
            let d = &options[&opt.name];
            assert_eq!(d["type"], opt.ty.as_str(), "{fqcn} {}", opt.name);
            assert_eq!(
                d["required"].as_bool().unwrap_or(false),
                opt.required,
                "{fqcn} {}",
                opt.name
            );
            assert_eq!(
                d.get("default").cloned().unwrap_or(Value::Null),
                opt.default.clone().unwrap_or(Value::Null),
                "{fqcn} {} default",
                opt.name
            );
            let choices: Vec<String> = d["choices"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(choices, opt.choices, "{fqcn} {} choices", opt.name);
            if opt.ty == OptType::List {
                assert_eq!(
                    d["elements"],
                    opt.elements.map(OptType::as_str).unwrap_or("str")
                );
            }
        }
        let returns = j[&fqcn]["return"].as_object().unwrap();
        for r in &spec.returns {
            assert_eq!(
                returns[&r.name]["type"],
                r.ty.as_str(),
                "{fqcn} return {}",
                r.name
            );
        }
        let examples = j[&fqcn]["examples"].as_str().unwrap_or_default();
        assert!(
            examples.contains(&fqcn),
            "{fqcn}: examples do not use the module"
        );
    }
}

#[test]
fn ansible_doc_text_of_node_v2_has_examples_and_reboot_returns() {
    let tmp = tempfile::tempdir().unwrap();
    stage_collection(tmp.path());
    let ans = Ansible::new(tmp.path(), tmp.path());
    let o = ans.output("ansible-doc", &["v2engine.storage.node_v2"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "v2engine.storage.node_v2",
        "OPTIONS",
        "hugepage_limit_mib",
        "boot_persistence",
        "EXAMPLES",
        "ansible.builtin.reboot",
        "RETURN VALUES",
        "reboot_required",
        "reboot_reasons",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn every_module_is_found_and_documented_by_ansible_doc() {
    let tmp = tempfile::tempdir().unwrap();
    stage_collection(tmp.path());
    let ans = Ansible::new(tmp.path(), tmp.path());
    let mut args = vec!["-j"];
    let names: Vec<String> = Module::ALL.iter().map(|m| m.fqcn()).collect();
    args.extend(names.iter().map(String::as_str));
    let o = ans.output("ansible-doc", &args, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    for m in Module::ALL {
        let doc = &j[m.fqcn()]["doc"];
        assert_eq!(doc["short_description"], m.short_description());
        assert!(
            doc["filename"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("plugins/modules/{}.yml", m.name()))),
            "{}: {}",
            m.fqcn(),
            doc["filename"]
        );
    }
}
