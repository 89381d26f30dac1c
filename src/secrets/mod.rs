//! Secrets at rest: XChaCha20-Poly1305 with a random nonce per value, under a data key that is
//! itself sealed ("wrapped") by a master key. The master key comes from `STIGMER_MASTER_KEY` or
//! a `master.key` file (32 random bytes as hex, mode 0600, made on first use); the wrapped data
//! key lives in the store next to the secrets, so rotating it re-encrypts every secret in one
//! transaction. Plaintext exists only inside [`SecretValue`], which never prints itself.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// `STIGMER_MASTER_KEY`: the master key as 64 hex digits, instead of a key file (for CI and
/// servers).
pub const ENV_MASTER_KEY: &str = "STIGMER_MASTER_KEY";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A secret's plaintext. It has no `Display`, and its `Debug` is `***`.
// No Serialize: a value cannot end up in JSON output, a stored event or a manifest by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a plaintext.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the few places that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a key cannot be had or used. Every message says which key and where it is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key file or variable does not hold 32 bytes as hex.
    #[error("the master key in {origin} is malformed: {reason}")]
    Malformed {
        /// `STIGMER_MASTER_KEY` or the file's path.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file can be read by other users.
    #[error("the master key file {} is readable by others (mode {mode:o}); refusing to use it", .path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file cannot be read or made.
    #[error("cannot use the master key file {}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Secrets exist but no master key was found to open them.
    #[error("secrets are stored but there is no master key: expected {expected}")]
    Missing {
        /// Where the key is expected.
        expected: String,
    },
    /// The master key is not the one the secrets were sealed with.
    #[error(
        "the master key from {origin} (fingerprint {found}) is not the one the secrets were encrypted with (fingerprint {expected})"
    )]
    Mismatch {
        /// Where the key came from.
        origin: String,
        /// The fingerprint recorded with the secrets.
        expected: String,
        /// The fingerprint of the key given.
        found: String,
    },
    /// A sealed value does not open: damaged, or sealed under another name or key.
    #[error("the secret {name} cannot be decrypted: it is damaged or was encrypted with another key")]
    Undecryptable {
        /// The secret.
        name: String,
    },
    /// The operating system gave no random bytes.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// 64 hex digits (taken from `STIGMER_MASTER_KEY` when settings are resolved).
    Given(HiddenKey),
    /// A key file, made on first use.
    File(PathBuf),
}

/// A key given as text, hidden from debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct HiddenKey(pub String);

impl fmt::Debug for HiddenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl KeySource {
    /// `STIGMER_MASTER_KEY` when set, else the file.
    pub fn from_env_or_file(file: PathBuf) -> Self {
        match std::env::var(ENV_MASTER_KEY) {
            Ok(hex) if !hex.trim().is_empty() => Self::Given(HiddenKey(hex)),
            _ => Self::File(file),
        }
    }

    /// Where the key is, as people read it.
    pub fn origin(&self) -> String {
        match self {
            Self::Given(_) => ENV_MASTER_KEY.to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// The key; made (and written, mode 0600) when `create` and the file does not exist yet.
    ///
    /// # Errors
    /// A malformed or exposed key, a file that cannot be read or written, or no key at all
    /// when one may not be made.
    pub fn load(&self, create: bool) -> Result<Option<MasterKey>, KeyError> {
        match self {
            Self::Given(hex) => parse_key(&hex.0, ENV_MASTER_KEY).map(Some),
            Self::File(path) => load_file(path, create),
        }
    }
}

/// The key that wraps data keys.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.fingerprint())
    }
}

impl MasterKey {
    /// A short public name of the key: the first 8 bytes of its SHA-256, hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// Seals a data key under this master key.
    ///
    /// # Errors
    /// No randomness for the nonce.
    pub fn wrap(&self, data: &DataKey) -> Result<Vec<u8>, KeyError> {
        seal(&self.0, &data.0, b"stigmer data key")
    }

    /// Opens a data key sealed under this master key.
    ///
    /// # Errors
    /// The key is not the one it was sealed with.
    pub fn unwrap_key(&self, wrapped: &[u8], origin: &str, expected: &str) -> Result<DataKey, KeyError> {
        let mismatch = || KeyError::Mismatch {
            origin: origin.to_owned(),
            expected: expected.to_owned(),
            found: self.fingerprint(),
        };
        let bytes = open(&self.0, wrapped, b"stigmer data key").ok_or_else(mismatch)?;
        Ok(DataKey(bytes.try_into().map_err(|_| mismatch())?))
    }
}

/// The key secrets are sealed with, one per store (per org on a server).
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// No randomness.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(random()?))
    }

    /// Seals a secret's value, bound to its name (a value moved to another name does not open).
    ///
    /// # Errors
    /// No randomness for the nonce.
    pub fn seal(&self, name: &str, value: &SecretValue) -> Result<Vec<u8>, KeyError> {
        seal(&self.0, value.0.as_bytes(), name.as_bytes())
    }

    /// Opens a secret's value.
    ///
    /// # Errors
    /// The value is damaged, or was sealed under another key or name.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<SecretValue, KeyError> {
        let undecryptable = || KeyError::Undecryptable { name: name.to_owned() };
        let bytes = open(&self.0, sealed, name.as_bytes()).ok_or_else(undecryptable)?;
        String::from_utf8(bytes).map(SecretValue).map_err(|_| undecryptable())
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

/// `nonce ‖ ciphertext+tag`.
fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let sealed = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad })
        .map_err(|_| KeyError::Random("encryption failed".to_owned()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    cipher.decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad }).ok()
}

fn parse_key(text: &str, origin: &str) -> Result<MasterKey, KeyError> {
    let malformed = |reason: &str| KeyError::Malformed { origin: origin.to_owned(), reason: reason.to_owned() };
    let bytes = hex::decode(text.trim()).map_err(|_| malformed("expected 64 hex digits"))?;
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| malformed("expected 64 hex digits (32 bytes)"))?;
    Ok(MasterKey(key))
}

fn load_file(path: &Path, create: bool) -> Result<Option<MasterKey>, KeyError> {
    let file_error = |reason: String| KeyError::File { path: path.to_owned(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(KeyError::Exposed { path: path.to_owned(), mode: mode & 0o777 });
                }
            }
            parse_key(&text, &path.display().to_string()).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = MasterKey(random()?);
            if let Some(dir) = path.parent() {
                crate::private_fs::create_private_dir(dir).map_err(|e| file_error(e.to_string()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            // `create_new`: two processes making the first key at once must not both win.
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(format!("{}\n", hex::encode(key.0)).as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| file_error(e.to_string()))?;
                    Ok(Some(key))
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_file(path, false),
                Err(e) => Err(file_error(e.to_string())),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(e.to_string())),
    }
}

/// Masks known secret values in text: every occurrence becomes `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<SecretValue>,
}

impl Redactor {
    /// A redactor for these values (empty ones are ignored; longer ones are masked first).
    pub fn new(values: impl IntoIterator<Item = SecretValue>) -> Self {
        let mut values: Vec<SecretValue> = values.into_iter().filter(|v| !v.0.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
        values.dedup();
        Self { values }
    }

    /// The text that stands for a secret value once masked.
    pub const MASK: &'static str = "***";

    /// Whether it masks anything at all (the run has secret values).
    #[must_use]
    pub fn masks_anything(&self) -> bool {
        !self.values.is_empty()
    }

    /// The text with every known value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.values.iter().fold(text.to_owned(), |text, value| text.replace(&value.0, Self::MASK))
    }

    /// JSON text with every value masked, in its raw and its JSON-escaped spelling (a value with
    /// a quote or a backslash appears escaped inside a JSON string). Text that no longer parses
    /// after masking becomes `"***"` as a whole: it never falls back to the original.
    pub fn redact_raw(&self, raw: Box<serde_json::value::RawValue>) -> Box<serde_json::value::RawValue> {
        if self.values.is_empty() {
            return raw;
        }
        let mut text = raw.get().to_owned();
        for value in &self.values {
            text = text.replace(&value.0, Self::MASK);
            if let Ok(quoted) = serde_json::to_string(&value.0) {
                let escaped = &quoted[1..quoted.len() - 1];
                if escaped != value.0 {
                    text = text.replace(escaped, Self::MASK);
                }
            }
        }
        serde_json::value::RawValue::from_string(text)
            .unwrap_or_else(|_| serde_json::value::to_raw_value(Self::MASK).unwrap_or_default())
    }

    /// A JSON value with every string (and object key) redacted, for what is stored.
    pub fn redact_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.values.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.redact(&text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (self.redact(&k), self.redact_json(v))).collect())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_bound_to_key_and_name() {
        let data = DataKey::generate().unwrap();
        let value = SecretValue::new("hunter2");
        let sealed = data.seal("db-password", &value).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(data.open("db-password", &sealed).unwrap(), value);
        assert!(data.open("other-name", &sealed).is_err(), "bound to its name");
        assert!(DataKey::generate().unwrap().open("db-password", &sealed).is_err(), "bound to its key");
        assert_ne!(data.seal("db-password", &value).unwrap(), sealed, "a fresh nonce every time");
        assert_eq!(format!("{value:?}"), "***");
    }

    #[test]
    fn a_data_key_opens_only_under_its_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::File(dir.path().join("master.key"));
        assert!(source.load(false).unwrap().is_none(), "not made unless asked");
        let master = source.load(true).unwrap().unwrap();
        assert_eq!(source.load(false).unwrap().unwrap().fingerprint(), master.fingerprint(), "read back");
        let data = DataKey::generate().unwrap();
        let wrapped = master.wrap(&data).unwrap();
        assert!(master.unwrap_key(&wrapped, "here", &master.fingerprint()).is_ok());
        let other = KeySource::Given(HiddenKey("11".repeat(32))).load(false).unwrap().unwrap();
        let error = other.unwrap_key(&wrapped, "STIGMER_MASTER_KEY", &master.fingerprint()).unwrap_err();
        assert!(error.to_string().contains("is not the one the secrets were encrypted with"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn an_exposed_or_malformed_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(KeySource::File(path.clone()).load(false), Err(KeyError::Exposed { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(KeySource::File(path).load(false), Err(KeyError::Malformed { .. })));
        assert!(matches!(KeySource::Given(HiddenKey("abc".into())).load(false), Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn the_redactor_masks_every_occurrence() {
        let redactor = Redactor::new([SecretValue::new("s3cr3t"), SecretValue::new("a\"b")]);
        assert_eq!(redactor.redact("token s3cr3t and s3cr3t again"), "token *** and *** again");
        let value = serde_json::json!({"k": ["x s3cr3t", {"a\"b": "a\"b"}], "n": 1});
        assert_eq!(redactor.redact_json(value.clone()), serde_json::json!({"k": ["x ***", {"***": "***"}], "n": 1}));
        let raw = serde_json::value::to_raw_value(&value).unwrap();
        let redacted: serde_json::Value = serde_json::from_str(redactor.redact_raw(raw).get()).unwrap();
        assert_eq!(redacted, serde_json::json!({"k": ["x ***", {"***": "***"}], "n": 1}));
    }
}
