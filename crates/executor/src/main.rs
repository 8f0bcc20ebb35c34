//! `v2engine-executor`: see the library's `cli` module.

fn main() -> std::process::ExitCode {
    executor::cli::main()
}
