//! Generates the gRPC contract's Rust code from `proto/` with a pure-Rust protobuf compiler
//! (protox), so `cargo build` needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/stigmer/backend/v1/backend.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
