//! The acceptance harness: what every scenario in `tests/` needs to drive a whole fleet as a
//! user does. A scenario brings up a lab ([`lab::Lab`]: network namespaces, an sshd, an
//! executor and an engine per node, loop devices as disks) on the SPDK lane the suite runs in
//! ([`lane::Lane`]: spdk-sim, or a real SPDK build named by `V2ENGINE_SPDK_DIR`), then runs
//! the real `terraform` ([`tf::Tf`]) and `ansible-playbook` against it and checks the effect
//! on the hosts: SPDK's own objects, and on the real lanes the data read back through the
//! volume's frontend.
//!
//! The binaries under test (`v2engine-lab`, the executor, the provider, spdk-sim) are the
//! workspace's, found next to the test executable ([`bins`]).

// A test harness: a step that fails is a failed scenario, said with the step's context.
#![allow(clippy::expect_used, clippy::panic)]

pub mod ansible;
pub mod bins;
pub mod datapath;
pub mod lab;
pub mod lane;
pub mod tf;
