//! Compiles the gRPC API with the pure-Rust `protox`, so no system `protoc`
//! is needed, and writes the descriptor set that server reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/replyguard/v1/replyguard.proto";
    println!("cargo:rerun-if-changed={proto}");
    // `sqlx::migrate!` embeds the migrations; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");

    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("replyguard_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::api::codec::Codec")
        // Written by hand so a cached page is sent as bytes encoded once.
        .extern_path(
            ".replyguard.v1.ListCommentsResponse",
            "crate::api::wire::ListCommentsResponse",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
