//! Compiles the gRPC API with the pure-Rust `protox`, so no system `protoc`
//! is needed, and writes the descriptor set that server reflection serves.
//! Also decides whether the tests' PostgreSQL half runs (`postgres_tests`).

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/replyguard/v1/replyguard.proto";
    println!("cargo:rerun-if-changed={proto}");
    // `sqlx::migrate!` embeds the migrations; a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    postgres_tests();

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

/// `REPLYGUARD_REQUIRE_POSTGRES=1` sets the cfg `postgres_tests`, which the PostgreSQL half of
/// every test needs to run; without it those tests are ignored, and the test runner's summary
/// counts them as such. libtest decides what is ignored when it is compiled, not when it runs,
/// so switching the variable rebuilds the crate and its tests.
fn postgres_tests() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=REPLYGUARD_REQUIRE_POSTGRES");
    if env::var("REPLYGUARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
