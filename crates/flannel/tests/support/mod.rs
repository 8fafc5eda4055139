//! What the root-only overlay tests need from the machine. A missing tool fails the test
//! with its name and package, rather than as a ping or route that "did not work".

use std::path::Path;

/// The programs these tests run, with the Debian package that has each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ping", "iputils-ping"),
    ("python3", "python3"),
    ("nft", "nftables"),
];

/// Panic naming every tool of [`TOOLS`] that is not on `PATH`.
pub fn require_tools() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .map(|(tool, package)| format!("{tool} (package {package})"))
        .collect();
    assert!(
        missing.is_empty(),
        "the overlay tests need, and this machine lacks: {} (scripts/test.sh installs them \
         with apt when run as root)",
        missing.join(", ")
    );
    assert!(
        Path::new("/run/netns").exists() || std::fs::create_dir_all("/run/netns").is_ok(),
        "the overlay tests need /run/netns (run them as root)"
    );
}
