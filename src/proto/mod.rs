//! The gRPC contract: the code generated from `proto/stigmer/backend/v1/backend.proto` at build
//! time, and the conversions between its messages and the backend contract's types, in both
//! directions, shared by the server and the remote backend so the two cannot disagree.
//!
//! Errors travel as a gRPC code (one per [`BackendError`] variant) plus an [`v1::ErrorDetail`]
//! in the status details, from which the client rebuilds the very same error value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use prost::Message as _;
use tonic::{Code, Status};

use crate::backend::approval::Decision;
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, BatchItem, Identity, Moved, ResourceHead, ResourceQuery,
    Revision, RevisionAction, SecretInfo, StoredResource, Write, Written,
};
use crate::model::Kind;

/// The generated messages, client and server.
#[allow(missing_docs, clippy::all, clippy::pedantic, reason = "generated code")]
pub mod v1 {
    tonic::include_proto!("stigmer.backend.v1");
}

/// The wire protocol revision. A client and a server speaking different ones refuse each other
/// with a clear message instead of misreading messages.
pub const PROTOCOL: u32 = 4;

/// Request metadata naming the protocol revision the client speaks.
pub const PROTOCOL_HEADER: &str = "x-stigmer-protocol";

/// Request metadata naming the org the client means to act in.
pub const ORG_HEADER: &str = "x-stigmer-org";

/// A message that does not hold what the contract says it must.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct WireError(String);

/// A kind by its manifest name.
///
/// # Errors
/// Not a kind.
pub fn kind(name: &str) -> Result<Kind, WireError> {
    Kind::from_manifest(name).ok_or_else(|| WireError(format!("unknown kind {name:?}")))
}

/// A time in RFC 3339.
///
/// # Errors
/// Not a time.
pub fn time(text: &str) -> Result<Timestamp, WireError> {
    text.parse().map_err(|e| WireError(format!("bad time {text:?}: {e}")))
}

/// A contract value as JSON bytes, for the messages that carry JSON.
pub fn encode_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Contract values are plain data with string keys: serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A contract value from JSON bytes.
///
/// # Errors
/// The bytes are not that value's JSON.
pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError(format!("bad JSON: {e}")))
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    // Serializing a `Value` to memory cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(value).unwrap_or_default()
}

fn json(bytes: &[u8]) -> Result<serde_json::Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError(format!("bad manifest JSON: {e}")))
}

impl From<&StoredResource> for v1::StoredResource {
    fn from(r: &StoredResource) -> Self {
        Self {
            kind: r.kind.as_str().to_owned(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            generation: r.generation,
            created_at: r.created_at.to_string(),
            updated_at: r.updated_at.to_string(),
            hash: r.hash.clone(),
            apply_set: r.apply_set.clone(),
            manifest_json: json_bytes(&r.manifest),
            status_json: r.status.as_ref().map(json_bytes),
        }
    }
}

impl TryFrom<v1::StoredResource> for StoredResource {
    type Error = WireError;
    fn try_from(r: v1::StoredResource) -> Result<Self, WireError> {
        Ok(Self {
            kind: kind(&r.kind)?,
            name: r.name,
            uid: r.uid,
            generation: r.generation,
            created_at: time(&r.created_at)?,
            updated_at: time(&r.updated_at)?,
            hash: r.hash,
            apply_set: r.apply_set,
            manifest: Arc::new(json(&r.manifest_json)?),
            status: r.status_json.as_deref().map(json).transpose()?,
        })
    }
}

impl From<&ResourceHead> for v1::ResourceHead {
    fn from(r: &ResourceHead) -> Self {
        Self {
            kind: r.kind.as_str().to_owned(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            generation: r.generation,
            hash: r.hash.clone(),
            apply_set: r.apply_set.clone(),
        }
    }
}

impl TryFrom<v1::ResourceHead> for ResourceHead {
    type Error = WireError;
    fn try_from(r: v1::ResourceHead) -> Result<Self, WireError> {
        Ok(Self {
            kind: kind(&r.kind)?,
            name: r.name,
            uid: r.uid,
            generation: r.generation,
            hash: r.hash,
            apply_set: r.apply_set,
        })
    }
}

impl From<&ResourceQuery> for v1::ListRequest {
    fn from(q: &ResourceQuery) -> Self {
        Self {
            kinds: q.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
            names: q.names.clone(),
            labels: q.labels.iter().map(|(key, value)| v1::Label { key: key.clone(), value: value.clone() }).collect(),
        }
    }
}

impl TryFrom<v1::ListRequest> for ResourceQuery {
    type Error = WireError;
    fn try_from(q: v1::ListRequest) -> Result<Self, WireError> {
        Ok(Self {
            kinds: q.kinds.iter().map(|k| kind(k)).collect::<Result<_, _>>()?,
            names: q.names,
            labels: q.labels.into_iter().map(|l| (l.key, l.value)).collect(),
        })
    }
}

impl From<&ApplyBatch> for v1::ApplyRequest {
    fn from(batch: &ApplyBatch) -> Self {
        let items = batch
            .items
            .iter()
            .map(|item| {
                let write = match &item.write {
                    Write::Create { manifest } => v1::Write {
                        op: v1::write::Op::Create.into(),
                        manifest_json: json_bytes(manifest),
                        ..v1::Write::default()
                    },
                    Write::Update { manifest, expected_generation } => v1::Write {
                        op: v1::write::Op::Update.into(),
                        manifest_json: json_bytes(manifest),
                        expected_generation: *expected_generation,
                        ..v1::Write::default()
                    },
                    Write::Delete { expected_generation } => v1::Write {
                        op: v1::write::Op::Delete.into(),
                        expected_generation: *expected_generation,
                        ..v1::Write::default()
                    },
                    Write::Rename { from, manifest, expected_generation } => v1::Write {
                        op: v1::write::Op::Rename.into(),
                        manifest_json: json_bytes(manifest),
                        expected_generation: *expected_generation,
                        from: from.clone(),
                    },
                };
                v1::BatchItem { kind: item.kind.as_str().to_owned(), name: item.name.clone(), write: Some(write) }
            })
            .collect();
        Self { apply_set: batch.apply_set.clone(), items, dry_run: batch.dry_run, correcting: batch.correcting }
    }
}

impl TryFrom<v1::ApplyRequest> for ApplyBatch {
    type Error = WireError;
    fn try_from(request: v1::ApplyRequest) -> Result<Self, WireError> {
        let items = request
            .items
            .into_iter()
            .map(|item| {
                let write = item.write.ok_or_else(|| WireError(format!("{} has no write", item.name)))?;
                let write = match v1::write::Op::try_from(write.op) {
                    Ok(v1::write::Op::Create) => Write::Create { manifest: json(&write.manifest_json)?.into() },
                    Ok(v1::write::Op::Update) => Write::Update {
                        manifest: json(&write.manifest_json)?.into(),
                        expected_generation: write.expected_generation,
                    },
                    Ok(v1::write::Op::Delete) => Write::Delete { expected_generation: write.expected_generation },
                    Ok(v1::write::Op::Rename) => Write::Rename {
                        from: write.from,
                        manifest: json(&write.manifest_json)?.into(),
                        expected_generation: write.expected_generation,
                    },
                    Ok(v1::write::Op::Unspecified) | Err(_) => {
                        return Err(WireError(format!("unknown write op {}", write.op)));
                    }
                };
                Ok(BatchItem { kind: kind(&item.kind)?, name: item.name, write })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { apply_set: request.apply_set, items, dry_run: request.dry_run, correcting: request.correcting })
    }
}

fn action_to_wire(action: RevisionAction) -> i32 {
    match action {
        RevisionAction::Created => v1::RevisionAction::Created,
        RevisionAction::Updated => v1::RevisionAction::Updated,
        RevisionAction::Deleted => v1::RevisionAction::Deleted,
        RevisionAction::Approved => v1::RevisionAction::Approved,
        RevisionAction::Rejected => v1::RevisionAction::Rejected,
        RevisionAction::Corrected => v1::RevisionAction::Corrected,
        RevisionAction::Renamed => v1::RevisionAction::Renamed,
    }
    .into()
}

fn action_from_wire(action: i32) -> Result<RevisionAction, WireError> {
    match v1::RevisionAction::try_from(action) {
        Ok(v1::RevisionAction::Created) => Ok(RevisionAction::Created),
        Ok(v1::RevisionAction::Updated) => Ok(RevisionAction::Updated),
        Ok(v1::RevisionAction::Deleted) => Ok(RevisionAction::Deleted),
        Ok(v1::RevisionAction::Approved) => Ok(RevisionAction::Approved),
        Ok(v1::RevisionAction::Rejected) => Ok(RevisionAction::Rejected),
        Ok(v1::RevisionAction::Corrected) => Ok(RevisionAction::Corrected),
        Ok(v1::RevisionAction::Renamed) => Ok(RevisionAction::Renamed),
        Ok(v1::RevisionAction::Unspecified) | Err(_) => Err(WireError(format!("unknown revision action {action}"))),
    }
}

impl From<&ApplyReceipt> for v1::ApplyResponse {
    fn from(receipt: &ApplyReceipt) -> Self {
        Self {
            written: receipt
                .written
                .iter()
                .map(|w| v1::Written {
                    kind: w.kind.as_str().to_owned(),
                    name: w.name.clone(),
                    generation: w.generation,
                    action: action_to_wire(w.action),
                })
                .collect(),
            committed: receipt.committed,
            version: receipt.version,
        }
    }
}

impl TryFrom<v1::ApplyResponse> for ApplyReceipt {
    type Error = WireError;
    fn try_from(response: v1::ApplyResponse) -> Result<Self, WireError> {
        Ok(Self {
            written: response
                .written
                .into_iter()
                .map(|w| {
                    Ok(Written {
                        kind: kind(&w.kind)?,
                        name: w.name,
                        generation: w.generation,
                        action: action_from_wire(w.action)?,
                    })
                })
                .collect::<Result<_, WireError>>()?,
            committed: response.committed,
            version: response.version,
        })
    }
}

impl From<&Revision> for v1::Revision {
    fn from(r: &Revision) -> Self {
        Self {
            kind: r.kind.as_str().to_owned(),
            name: r.name.clone(),
            generation: r.generation,
            action: action_to_wire(r.action),
            at: r.at.to_string(),
            apply_set: r.apply_set.clone(),
            actor: r.actor.clone(),
            hash: r.hash.clone(),
            manifest_json: json_bytes(&r.manifest),
        }
    }
}

impl TryFrom<v1::Revision> for Revision {
    type Error = WireError;
    fn try_from(r: v1::Revision) -> Result<Self, WireError> {
        Ok(Self {
            kind: kind(&r.kind)?,
            name: r.name,
            generation: r.generation,
            action: action_from_wire(r.action)?,
            at: time(&r.at)?,
            apply_set: r.apply_set,
            actor: r.actor,
            hash: r.hash,
            manifest: Arc::new(json(&r.manifest_json)?),
        })
    }
}

impl From<&AuditEntry> for v1::AuditEntry {
    fn from(e: &AuditEntry) -> Self {
        Self {
            at: e.at.to_string(),
            action: action_to_wire(e.action),
            target: e.target.clone(),
            actor: e.actor.clone(),
            apply_set: e.apply_set.clone(),
            address: e.address.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl TryFrom<v1::AuditEntry> for AuditEntry {
    type Error = WireError;
    fn try_from(e: v1::AuditEntry) -> Result<Self, WireError> {
        Ok(Self {
            at: time(&e.at)?,
            action: action_from_wire(e.action)?,
            target: e.target,
            actor: e.actor,
            apply_set: e.apply_set,
            address: e.address,
            detail: e.detail,
        })
    }
}

impl From<&Decision> for v1::ExecutionDecision {
    fn from(d: &Decision) -> Self {
        Self {
            agent: d.agent.clone(),
            call_id: d.call_id.clone(),
            tool: d.tool.clone(),
            approved: d.approved,
            reason: d.reason.clone(),
        }
    }
}

impl From<v1::ExecutionDecision> for Decision {
    fn from(d: v1::ExecutionDecision) -> Self {
        Self { agent: d.agent, call_id: d.call_id, tool: d.tool, approved: d.approved, reason: d.reason }
    }
}

impl From<&SecretInfo> for v1::SecretInfo {
    fn from(s: &SecretInfo) -> Self {
        Self { name: s.name.clone(), created_at: s.created_at.to_string(), updated_at: s.updated_at.to_string() }
    }
}

impl TryFrom<v1::SecretInfo> for SecretInfo {
    type Error = WireError;
    fn try_from(s: v1::SecretInfo) -> Result<Self, WireError> {
        Ok(Self { name: s.name, created_at: time(&s.created_at)?, updated_at: time(&s.updated_at)? })
    }
}

impl From<Identity> for v1::WhoAmIResponse {
    fn from(i: Identity) -> Self {
        Self { actor: i.actor, backend: i.backend, org: i.org, role: i.role }
    }
}

impl From<v1::WhoAmIResponse> for Identity {
    fn from(i: v1::WhoAmIResponse) -> Self {
        Self { actor: i.actor, backend: i.backend, org: i.org, role: i.role }
    }
}

/// Decodes a list of wire messages into contract values.
///
/// # Errors
/// The first message that does not convert.
pub fn decode_all<W, T: TryFrom<W, Error = WireError>>(items: Vec<W>) -> Result<Vec<T>, WireError> {
    items.into_iter().map(T::try_from).collect()
}

/// A members list (`(Kind, name)`) on the wire.
pub fn members_to_wire(members: &[(Kind, String)]) -> Vec<v1::Member> {
    members.iter().map(|(k, name)| v1::Member { kind: k.as_str().to_owned(), name: name.clone() }).collect()
}

/// A members list from the wire.
///
/// # Errors
/// An unknown kind.
pub fn members_from_wire(members: Vec<v1::Member>) -> Result<Vec<(Kind, String)>, WireError> {
    members.into_iter().map(|m| Ok((kind(&m.kind)?, m.name))).collect()
}

impl From<WireError> for Status {
    fn from(error: WireError) -> Self {
        Status::invalid_argument(error.to_string())
    }
}

impl From<WireError> for BackendError {
    fn from(error: WireError) -> Self {
        BackendError::Remote { code: "malformed response".to_owned(), message: error.0 }
    }
}

/// A backend error as the status a server returns: a definite code, the message people read,
/// and the detail the client rebuilds the error from.
pub fn error_to_status(error: &BackendError) -> Status {
    use v1::error_detail::Error as Detail;
    let (code, detail) = match error {
        BackendError::Conflict { moved } => (
            Code::Aborted,
            Some(Detail::Conflict(v1::Conflict {
                moved: moved
                    .iter()
                    .map(|m| v1::Moved { address: m.address.clone(), expected: m.expected, found: m.found })
                    .collect(),
            })),
        ),
        BackendError::NotFound { address } => {
            (Code::NotFound, Some(Detail::NotFound(v1::NotFound { address: address.clone() })))
        }
        BackendError::Busy { path, holder, waited } => (
            Code::Unavailable,
            Some(Detail::Busy(v1::Busy {
                path: path.display().to_string(),
                holder: holder.clone(),
                waited_seconds: waited.as_secs_f64(),
            })),
        ),
        BackendError::NewerFormat { path, found, supported } => (
            Code::FailedPrecondition,
            Some(Detail::NewerFormat(v1::NewerFormat {
                path: path.display().to_string(),
                found: *found,
                supported: *supported,
            })),
        ),
        BackendError::Corrupt { path, detail } => (
            Code::DataLoss,
            Some(Detail::Corrupt(v1::Corrupt { path: path.display().to_string(), detail: detail.clone() })),
        ),
        BackendError::Key(message) => {
            (Code::FailedPrecondition, Some(Detail::Key(v1::KeyProblem { message: message.clone() })))
        }
        BackendError::SecretName { name, reason } => (
            Code::InvalidArgument,
            Some(Detail::SecretName(v1::SecretName { name: name.clone(), reason: reason.clone() })),
        ),
        BackendError::LeaseLost { id, reason } => {
            (Code::Aborted, Some(Detail::LeaseLost(v1::LeaseLost { id: id.clone(), reason: reason.clone() })))
        }
        BackendError::BadEvent(reason) => {
            (Code::InvalidArgument, Some(Detail::BadEvent(v1::BadEvent { reason: reason.clone() })))
        }
        BackendError::Unavailable(message) => {
            (Code::Unavailable, Some(Detail::StoreUnavailable(v1::StoreUnavailable { message: message.clone() })))
        }
        BackendError::Unauthenticated(_) => (Code::Unauthenticated, None),
        BackendError::PermissionDenied(_) => (Code::PermissionDenied, None),
        BackendError::Incompatible(_) => (Code::FailedPrecondition, None),
        BackendError::Io { .. }
        | BackendError::Storage(_)
        | BackendError::Unreachable { .. }
        | BackendError::Remote { .. } => (Code::Internal, None),
    };
    let message = match error {
        // The server's own wording, without the prefix the client adds again.
        BackendError::Unauthenticated(m) | BackendError::PermissionDenied(m) | BackendError::Incompatible(m) => {
            m.clone()
        }
        other => other.to_string(),
    };
    match detail {
        Some(detail) => {
            let bytes = v1::ErrorDetail { error: Some(detail) }.encode_to_vec();
            Status::with_details(code, message, bytes.into())
        }
        None => Status::new(code, message),
    }
}

/// The backend error a status stands for: the exact value the server had, when it sent one.
pub fn status_to_error(status: &Status, endpoint: &str) -> BackendError {
    use v1::error_detail::Error as Detail;
    if let Ok(v1::ErrorDetail { error: Some(detail) }) = v1::ErrorDetail::decode(status.details()) {
        return match detail {
            Detail::Conflict(c) => BackendError::Conflict {
                moved: c
                    .moved
                    .into_iter()
                    .map(|m| Moved { address: m.address, expected: m.expected, found: m.found })
                    .collect(),
            },
            Detail::NotFound(n) => BackendError::NotFound { address: n.address },
            Detail::Busy(b) => BackendError::Busy {
                path: PathBuf::from(b.path),
                holder: b.holder,
                waited: Duration::try_from_secs_f64(b.waited_seconds).unwrap_or_default(),
            },
            Detail::NewerFormat(n) => {
                BackendError::NewerFormat { path: PathBuf::from(n.path), found: n.found, supported: n.supported }
            }
            Detail::Corrupt(c) => BackendError::Corrupt { path: PathBuf::from(c.path), detail: c.detail },
            Detail::Key(k) => BackendError::Key(k.message),
            Detail::SecretName(n) => BackendError::SecretName { name: n.name, reason: n.reason },
            Detail::LeaseLost(l) => BackendError::LeaseLost { id: l.id, reason: l.reason },
            Detail::BadEvent(b) => BackendError::BadEvent(b.reason),
            Detail::StoreUnavailable(u) => BackendError::Unavailable(u.message),
        };
    }
    let message = status.message().to_owned();
    match status.code() {
        Code::Unauthenticated => BackendError::Unauthenticated(message),
        Code::PermissionDenied => BackendError::PermissionDenied(message),
        Code::FailedPrecondition => BackendError::Incompatible(message),
        Code::Unavailable => {
            BackendError::Unreachable { endpoint: endpoint.to_owned(), detail: transport_detail(status) }
        }
        // The connection broke below gRPC: most often plain HTTP/2 spoken to a TLS server.
        Code::Unknown | Code::Internal if broke_below_grpc(status) => {
            let mut detail = transport_detail(status);
            if endpoint.starts_with("http://") {
                detail.push_str(" (if the server serves TLS, use an https:// endpoint)");
            }
            BackendError::Unreachable { endpoint: endpoint.to_owned(), detail }
        }
        code => BackendError::Remote { code: format!("{code:?}"), message },
    }
}

/// Whether the client's transport (not the server) produced the status: tonic says so only
/// in its wording.
fn broke_below_grpc(status: &Status) -> bool {
    let message = status.message();
    message == "transport error" || message.starts_with("h2 protocol error")
}

/// What went wrong on the way to the server, with the cause chain the transport hides.
fn transport_detail(status: &Status) -> String {
    let mut detail = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail = format!("{detail}: {text}");
        }
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_the_wire_unchanged() {
        let errors = [
            BackendError::Conflict { moved: vec![Moved { address: "skill/a".into(), expected: Some(1), found: None }] },
            BackendError::NotFound { address: "agent/x".into() },
            BackendError::Busy {
                path: "/d/local.db".into(),
                holder: Some("pid 1".into()),
                waited: Duration::from_secs(2),
            },
            BackendError::NewerFormat { path: "/d".into(), found: 9, supported: 1 },
            BackendError::Corrupt { path: "/d".into(), detail: "torn".into() },
            BackendError::Unauthenticated("token expired".into()),
            BackendError::PermissionDenied("viewers cannot write".into()),
            BackendError::Incompatible("protocol 2".into()),
            BackendError::Key("the master key is missing".into()),
            BackendError::SecretName { name: "a b".into(), reason: "space".into() },
            BackendError::LeaseLost { id: "e1".into(), reason: "it is cancelled".into() },
            BackendError::BadEvent("type is missing".into()),
        ];
        for error in errors {
            let back = status_to_error(&error_to_status(&error), "http://x");
            assert_eq!(back.to_string(), error.to_string());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&error));
        }
    }

    #[test]
    fn a_batch_crosses_the_wire_unchanged() {
        let batch = ApplyBatch {
            apply_set: Some("demo".into()),
            items: vec![
                BatchItem {
                    kind: Kind::Agent,
                    name: "a".into(),
                    write: Write::Create { manifest: serde_json::json!({"n": 1.5, "s": "x"}).into() },
                },
                BatchItem {
                    kind: Kind::Skill,
                    name: "b".into(),
                    write: Write::Update { manifest: serde_json::json!([]).into(), expected_generation: 3 },
                },
                BatchItem { kind: Kind::Skill, name: "c".into(), write: Write::Delete { expected_generation: 7 } },
                BatchItem {
                    kind: Kind::Agent,
                    name: "new".into(),
                    write: Write::Rename {
                        from: "old".into(),
                        manifest: serde_json::json!({}).into(),
                        expected_generation: 2,
                    },
                },
            ],
            dry_run: true,
            correcting: true,
        };
        assert_eq!(ApplyBatch::try_from(v1::ApplyRequest::from(&batch)).unwrap(), batch);
    }
}
