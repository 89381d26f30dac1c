//! Files and directories only their owner can read: for tokens, keys and configuration.

use std::fs;
use std::path::Path;

/// A directory (and its missing parents) only its owner can enter.
///
/// # Errors
/// As [`std::fs::DirBuilder::create`].
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A file, created or truncated, only its owner can read.
///
/// # Errors
/// As [`std::fs::OpenOptions::open`].
pub fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
