//! Compiles `proto/executor.proto` with protox (no system protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["executor.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // New RPCs then do not break other implementations of the service (test fakes).
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
