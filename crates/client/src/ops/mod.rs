//! Resource operations shared by every front-end (Terraform provider, Ansible modules).
//!
//! A [`Session`] is one front-end run over a fleet: it observes every node once (cached
//! until something is written), remembers the records planned so far (so a later plan sees
//! earlier ones), writes revisioned records to every node and reconciles. Per resource,
//! `plan` predicts without changing anything, `apply` writes and reconciles, `read` returns
//! the stored spec with the observed status, `delete` writes a tombstone. Results are the
//! model's status structs plus [`Warning`]s; failures are [`OpsError`]s naming the node or
//! attribute. Front-ends only translate these to their own vocabulary.

pub mod block_disk;
pub mod node_v2;
pub mod objects;
pub mod session;
pub mod setting;
pub mod storage_class;
pub mod volume;

pub use session::{Observed, Session};

use crate::fleet::FleetError;

/// A warning to show the user (Terraform plan warning, Ansible `warnings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One line.
    pub summary: String,
    /// Details.
    pub detail: String,
}

/// A result with the warnings that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// The value.
    pub value: T,
    /// Warnings to show.
    pub warnings: Vec<Warning>,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Reaching or calling nodes failed; every node is named.
    #[error("{context}: {source}")]
    Fleet {
        /// What was being done.
        context: String,
        /// The per-node failures.
        #[source]
        source: FleetError,
    },
    /// An attribute is invalid in the context of the fleet (e.g. an unknown node).
    #[error("{attribute}: {reason}")]
    Invalid {
        /// Attribute path.
        attribute: String,
        /// Why.
        reason: String,
    },
    /// Nodes foresee or report failures (a missing module, too little memory).
    #[error("{}", .0.iter().map(|(n, m)| format!("node {n}: {m}")).collect::<Vec<_>>().join("; "))]
    Nodes(Vec<(String, String)>),
    /// A node the operation needs is down or cut off (the front-end may keep what it knew).
    #[error("node {node} is unreachable: {reason}")]
    Unreachable {
        /// Node name.
        node: String,
        /// Why.
        reason: String,
    },
    /// Cannot be decided now, only at apply: what it needs (a storage class, disks) is
    /// planned in this same run and does not exist yet.
    #[error("{attribute}: {reason}")]
    Deferred {
        /// Attribute path.
        attribute: String,
        /// What is missing now.
        reason: String,
    },
    /// The object is in use and cannot change.
    #[error("{0}")]
    InUse(String),
    /// The object does not exist (import, read by id).
    #[error("{0}")]
    NotFound(String),
    /// A record could not be (de)serialised.
    #[error("record {key}: {reason}")]
    Record {
        /// Record key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl OpsError {
    pub(crate) fn fleet(context: impl Into<String>, source: FleetError) -> Self {
        OpsError::Fleet {
            context: context.into(),
            source,
        }
    }
}

/// Deserialises a record's spec.
pub(crate) fn spec_of<T: serde::de::DeserializeOwned>(r: &model::Record) -> Result<T, OpsError> {
    serde_json::from_value(r.spec.clone()).map_err(|e| OpsError::Record {
        key: r.key.to_string(),
        reason: e.to_string(),
    })
}

/// Serialises a spec for a record.
pub(crate) fn json_of<T: serde::Serialize>(
    key: &model::RecordKey,
    spec: &T,
) -> Result<serde_json::Value, OpsError> {
    serde_json::to_value(spec).map_err(|e| OpsError::Record {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
