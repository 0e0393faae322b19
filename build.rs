//! Compiles the agent gateway's local API, proto/peerd/agent/v1/agent.proto,
//! and the browser agents' control messages, proto/peerd/browser/v1,
//! with protox (pure Rust), so building the daemon needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/peerd/agent");
    println!("cargo:rerun-if-changed=proto/peerd/browser");
    let descriptors = protox::compile(
        [
            "peerd/agent/v1/agent.proto",
            "peerd/browser/v1/browser.proto",
        ],
        ["proto"],
    )?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
