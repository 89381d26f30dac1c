//! Reading manifests: files, directories and stdin; multi-document YAML streams; the project
//! file; the directories of skills (`skill_dir`); and diagnostics that point at
//! `file:line:col`. Also any other file a user names (`file`: a workflow's input, a secret, a
//! token, a certificate), read with the same bounds. This layer knows nothing of backends.

pub mod diagnostic;
pub mod file;
mod load;
pub mod skill_dir;
pub mod yaml;

pub use diagnostic::{Diagnostic, Location, Note, Severity, did_you_mean};
pub use load::{
    Discovery, Entry, FileLoad, InputPath, LoadedDocument, MAX_MANIFEST_BYTES, ManifestSet, Moved, PROJECT_FILE,
    Project, Source, discover, load, read_manifest, read_stdin,
};
