//! Compiles the schemas in proto/ with protox (pure Rust), so building peerd
//! needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let files = [
        "peerd/rpc/v1/rpc.proto",
        "peerd/node/v1/node.proto",
        "peerd/nat/v1/nat.proto",
        "peerd/relay/v1/relay.proto",
    ];
    let descriptors = protox::compile(files, ["../../proto"])?;
    prost_build::Config::new()
        // Payloads stay zero-copy views of the received frame.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
