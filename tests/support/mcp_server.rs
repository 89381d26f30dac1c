//! Where the MCP test server (`examples/mcp_test_server.rs`) is built, for the crate's unit tests
//! and the integration tests alike (both include this file).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The test server's binary, next to this test binary (`target/<profile>/deps/..`) under
/// `examples/`. `cargo test` builds examples but `cargo test --lib` does not, so when run by cargo
/// it is built (or found up to date) here, once per test process, into the same target directory
/// and profile. Run outside cargo, the binary must already be there.
pub fn test_server() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test binary>");
        let binary = profile_dir.join("examples").join(format!("mcp_test_server{}", std::env::consts::EXE_SUFFIX));
        if let Some(cargo) = std::env::var_os("CARGO") {
            let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
                Some("debug") | None => "dev".to_owned(),
                Some(other) => other.to_owned(),
            };
            let target_dir = profile_dir.parent().expect("the target directory");
            let mut build = std::process::Command::new(cargo);
            build
                .args(["build", "--quiet", "--example", "mcp_test_server", "--profile", &profile, "--target-dir"])
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            // Cargo sets these for the test process, not for itself; some build scripts (ring's)
            // track them, so passing them on would rebuild half the dependencies on every run.
            for (name, _) in std::env::vars_os() {
                if name.to_str().is_some_and(set_by_cargo_for_tests) {
                    build.env_remove(&name);
                }
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo build --example mcp_test_server failed");
        }
        assert!(binary.exists(), "{} is missing: run `cargo build --example mcp_test_server`", binary.display());
        binary
    })
}

fn set_by_cargo_for_tests(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}
