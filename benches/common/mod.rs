//! What every bench binary does first.

use std::path::PathBuf;

/// Builds the release module the benches load (`target/release/libferrohsm.so`) and returns
/// the crate's directory.
pub fn build_release_module() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--lib"])
        .current_dir(&manifest)
        .status()
        .expect("cargo build");
    assert!(status.success());
    manifest
}
