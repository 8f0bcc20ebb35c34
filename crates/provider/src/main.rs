//! `terraform-provider-v2engine`: started by Terraform, speaks plugin protocol 6.

fn main() -> std::process::ExitCode {
    tfplugin::serve(provider::V2engineProvider::new())
}
