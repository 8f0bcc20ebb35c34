//! `spdk-sim` as an example of this package, so that `cargo test -p v2engine-executor`
//! builds an spdk_tgt stand-in the engine tests can start (`--spdk-tgt
//! target/debug/examples/spdk_sim_engine`): same flags as spdk_tgt (`-r -m -s --no-huge`),
//! SIGTERM/SIGINT stop it. Tests only; production runs a real spdk_tgt.

fn main() -> std::process::ExitCode {
    spdk_sim::entry::main(std::env::args().skip(1))
}
