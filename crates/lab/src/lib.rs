//! v2engine-lab: several v2engine hosts in network namespaces on one machine.
//!
//! Each node gets a network namespace joined to a per-lab bridge by a veth pair, an sshd
//! with lab keys, a `v2engine-executor` over a simulated host, and two disks (loop devices
//! over sparse files). The lab writes what Terraform and Ansible need to reach the nodes.
//!
//! Modules are cut at I/O boundaries:
//! - pure: [`plan`] (names, addresses, paths), [`argv`] (command lines), [`render`]
//!   (generated files), [`report`] (status table), [`link`] (cutting and restoring a node's
//!   link: states, steps, messages), [`state`] (lab.json types; load/save);
//! - I/O: [`cmd`] (running tools), [`net`] (`ip`), [`loopdev`] (`losetup`), [`keys`]
//!   (`ssh-keygen`), [`proc`] (processes), [`probe`] (sshd and executor reachability),
//!   [`services`] (a node's sshd and executor), [`teardown`] (`down`);
//! - [`lab`]: the commands.

pub mod argv;
pub mod cmd;
pub mod engine;
pub mod keys;
pub mod lab;
pub mod link;
pub mod loopdev;
pub mod net;
pub mod plan;
pub mod probe;
pub mod proc;
pub mod render;
pub mod report;
pub mod services;
pub mod state;
pub mod teardown;
