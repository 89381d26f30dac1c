//! Reading one file a user names — a manifest, a workflow's input, a secret's value, a token, a
//! certificate — in bounded size and time, with the same checks and words everywhere.
//!
//! - A directory, a socket or a block device is refused by its name before it is opened.
//! - A named pipe (FIFO) is opened without waiting for a writer: one with a writer (`-f <(cmd)`,
//!   `/dev/stdin`) is read like any stream, one that nothing writes to is refused at once
//!   instead of blocking the command forever.
//! - Size is checked from the metadata before reading, and again while reading (for streams).
//! - Text must be UTF-8 without NUL bytes; a byte order mark is dropped. Errors name the line
//!   and column of the first bad byte.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::yaml::Position;

/// Why a file could not be read. Paths are shown as the user wrote them.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A directory where a file was expected.
    #[error("{path} is a directory, not a file")]
    Directory {
        /// The directory.
        path: String,
    },
    /// A socket, a block device: nothing to read a document from.
    #[error("{path} is a {what}, not a regular file")]
    NotAFile {
        /// The path.
        path: String,
        /// What it is.
        what: SpecialFile,
    },
    /// A named pipe that nothing writes to: reading it would wait forever.
    #[error("{path} is a named pipe that nothing writes to")]
    SilentPipe {
        /// The pipe.
        path: String,
    },
    /// Larger than the reader accepts.
    #[error("{path} is larger than {}", human(*.limit))]
    TooLarge {
        /// The file.
        path: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Text was expected and the file holds a NUL byte.
    #[error("{path} is a binary file, not text (a NUL byte at {position})")]
    Binary {
        /// The file.
        path: String,
        /// Where the first NUL byte is.
        position: Position,
    },
    /// Text was expected and the file is not UTF-8.
    #[error("{path} is not valid UTF-8 (at {position})")]
    NotUtf8 {
        /// The file.
        path: String,
        /// Where the first byte that is not UTF-8 is.
        position: Position,
    },
}

impl FileError {
    /// A hint for the fix, in the words of the option that named the file (`-f`, `--from-file`).
    #[must_use]
    pub fn hint(&self, option: &str) -> String {
        match self {
            Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                format!("check the path given to {option}")
            }
            Self::Io { .. } => format!("check the path given to {option} and its permissions"),
            Self::Directory { .. } | Self::NotAFile { .. } => format!("{option} takes a regular file"),
            Self::SilentPipe { .. } => {
                "start what writes to the pipe first, or name a regular file (`<(command)` works too)".to_owned()
            }
            Self::TooLarge { .. } => format!("check that {option} names the right file"),
            Self::Binary { .. } => format!("{option} takes a text file; check that it names the right one"),
            Self::NotUtf8 { .. } => "save the file as UTF-8".to_owned(),
        }
    }
}

/// A kind of file that is neither a regular file nor a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    /// A named pipe (FIFO).
    Pipe,
    /// A Unix domain socket.
    Socket,
    /// A block device.
    BlockDevice,
    /// A character device (a terminal, `/dev/null`).
    CharDevice,
    /// Something else.
    Other,
}

impl SpecialFile {
    /// What the file at `meta` is, when it is not a regular file or a directory.
    #[must_use]
    pub fn of(meta: &fs::Metadata) -> Option<Self> {
        let kind = meta.file_type();
        if kind.is_file() || kind.is_dir() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_fifo() {
                return Some(Self::Pipe);
            }
            if kind.is_socket() {
                return Some(Self::Socket);
            }
            if kind.is_block_device() {
                return Some(Self::BlockDevice);
            }
            if kind.is_char_device() {
                return Some(Self::CharDevice);
            }
        }
        Some(Self::Other)
    }
}

impl fmt::Display for SpecialFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pipe => "named pipe",
            Self::Socket => "socket",
            Self::BlockDevice => "block device",
            Self::CharDevice => "character device",
            Self::Other => "special file",
        })
    }
}

/// Reads the file at `path` (symlinks followed), refusing it when it holds more than `limit`
/// bytes, is not something to read a document from, or is a pipe nothing writes to.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let name = || path.display().to_string();
    let io = |source| FileError::Io { path: name(), source };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(FileError::Directory { path: name() });
    }
    let special = SpecialFile::of(&meta);
    if let Some(what @ (SpecialFile::Socket | SpecialFile::BlockDevice | SpecialFile::Other)) = special {
        return Err(FileError::NotAFile { path: name(), what });
    }
    if meta.is_file() && meta.len() > limit {
        return Err(FileError::TooLarge { path: name(), limit });
    }
    let file = open(path, special.is_some()).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { path: name(), limit });
    }
    if bytes.is_empty() && special == Some(SpecialFile::Pipe) {
        return Err(FileError::SilentPipe { path: name() });
    }
    Ok(bytes)
}

/// Opens for reading. A pipe or device is opened without waiting (opening a FIFO blocks until
/// a writer comes), then switched back to blocking reads: with no writer, the first read ends
/// the file at once.
fn open(path: &Path, special: bool) -> io::Result<fs::File> {
    #[cfg(unix)]
    if special {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new().read(true).custom_flags(OFlags::NONBLOCK.bits().cast_signed()).open(path)?;
        let flags = rustix::fs::fcntl_getfl(&file)?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
        return Ok(file);
    }
    #[cfg(not(unix))]
    let _ = special;
    fs::File::open(path)
}

/// The bytes as text: a byte order mark dropped, NUL bytes and invalid UTF-8 refused with the
/// place of the first bad byte. `name` is how the file is shown.
pub fn text(name: &str, bytes: Vec<u8>) -> Result<String, FileError> {
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    if let Some(nul) = bytes.iter().position(|b| *b == 0) {
        return Err(FileError::Binary { path: name.to_owned(), position: position_of_byte(&bytes, nul) });
    }
    String::from_utf8(bytes).map_err(|e| {
        let position = position_of_byte(e.as_bytes(), e.utf8_error().valid_up_to());
        FileError::NotUtf8 { path: name.to_owned(), position }
    })
}

/// The labels of the PEM blocks in `bytes` (`CERTIFICATE`, `PRIVATE KEY`), in order: enough
/// to tell a certificate or key from a file that holds none, before a TLS library is handed it.
#[must_use]
pub fn pem_labels(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----").map(str::to_owned))
        .collect()
}

/// Line and column (in characters) of a byte offset, for input that may not be UTF-8.
#[allow(clippy::naive_bytecount, reason = "runs once, on an error path")]
#[must_use]
pub fn position_of_byte(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Position { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX) }
}

/// `32 MiB`, `64 KiB`, `100 bytes`.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 && b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_positions_count_lines_and_characters() {
        assert_eq!(position_of_byte(b"ab\ncd\xffe", 5), Position { line: 2, column: 3 });
        assert_eq!(position_of_byte("é\nx".as_bytes(), 3), Position { line: 2, column: 1 });
    }

    #[test]
    fn text_refuses_nul_bytes_and_invalid_utf8_with_their_place() {
        assert_eq!(text("t", b"\xEF\xBB\xBFkind: Agent\n".to_vec()).unwrap(), "kind: Agent\n");
        let error = text("t", b"kind: Agent\n\0".to_vec()).unwrap_err();
        assert_eq!(error.to_string(), "t is a binary file, not text (a NUL byte at 2:1)");
        let error = text("t", b"kind: \xe9t\xe9\n".to_vec()).unwrap_err();
        assert_eq!(error.to_string(), "t is not valid UTF-8 (at 1:7)");
    }

    #[test]
    fn pem_labels_name_the_blocks() {
        let pem =
            b"junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\n";
        assert_eq!(pem_labels(pem), ["CERTIFICATE", "EC PRIVATE KEY"]);
        assert!(pem_labels(b"\0\xff random").is_empty());
    }

    #[test]
    fn sizes_are_refused_before_reading_and_named_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::File::create(&path).unwrap().set_len(2 * 1024 * 1024).unwrap();
        let error = read(&path, 1024 * 1024).unwrap_err();
        assert!(error.to_string().ends_with("is larger than 1 MiB"), "{error}");
        assert_eq!(read(&path, 4 * 1024 * 1024).unwrap().len(), 2 * 1024 * 1024);
        assert!(matches!(read(dir.path(), 10).unwrap_err(), FileError::Directory { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_nothing_writes_to_is_refused_at_once_and_one_with_a_writer_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&pipe).status().unwrap().success());
        let started = std::time::Instant::now();
        assert!(matches!(read(&pipe, 1024).unwrap_err(), FileError::SilentPipe { .. }));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        // A writer that holds the pipe open before the read, as `<(command)` does.
        let mut writer = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3>'{}'; sleep 0.2; echo 'kind: Agent' >&3", pipe.display()))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let read = read(&pipe, 1024);
        writer.wait().unwrap();
        assert_eq!(read.unwrap(), b"kind: Agent\n");
    }
}
