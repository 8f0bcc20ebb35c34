//! `spdk-sim`: run the simulator with spdk_tgt's command line.

fn main() -> std::process::ExitCode {
    spdk_sim::entry::main(std::env::args().skip(1))
}
