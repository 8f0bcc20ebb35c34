//! Compiles the Terraform plugin protocol and go-plugin's services with
//! protox (no system `protoc` needed) and generates tonic code from the
//! resulting descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(
        ["tfplugin6.proto", "plugin.proto", "health.proto"],
        ["proto"],
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
