//! One executor: typed calls whose errors name the node.

use proto::v1;
use proto::v1::executor_client::ExecutorClient as RawClient;
use tonic::transport::Channel;

use model::{Record, RecordKey, RecordKind};

use crate::endpoint::Endpoint;
use crate::transport::{self, TransportError, TransportOptions};

/// What went wrong talking to one node's executor.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The executor could not be reached.
    #[error("node {node}: {source}")]
    Connect {
        /// Node name.
        node: String,
        /// Why.
        #[source]
        source: TransportError,
    },
    /// The executor could not be reached earlier in this run; not tried again.
    #[error("node {node}: unreachable: {reason}")]
    Unreachable {
        /// Node name.
        node: String,
        /// The first failure, as text.
        reason: String,
    },
    /// The executor answered with an error.
    #[error("node {node}: {method} failed: {message} ({code:?})")]
    Rpc {
        /// Node name.
        node: String,
        /// Method called.
        method: &'static str,
        /// gRPC status code.
        code: tonic::Code,
        /// The executor's message.
        message: String,
    },
    /// The executor sent a record we cannot read.
    #[error("node {node}: executor sent an unreadable record {kind}/{name}: {reason}")]
    BadRecord {
        /// Node name.
        node: String,
        /// Record kind as sent.
        kind: String,
        /// Record name as sent.
        name: String,
        /// Why it is unreadable.
        reason: String,
    },
}

impl ClientError {
    /// True when the node is down or cut off (see [`TransportError::is_node_down`]), or an
    /// established connection stopped answering; false for security and configuration
    /// failures and for errors the executor itself returned.
    pub fn is_node_down(&self) -> bool {
        match self {
            ClientError::Connect { source, .. } => source.is_node_down(),
            ClientError::Unreachable { .. } => true,
            ClientError::Rpc { code, .. } => {
                matches!(
                    code,
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                )
            }
            ClientError::BadRecord { .. } => false,
        }
    }

    /// The node this error is about.
    pub fn node(&self) -> &str {
        match self {
            ClientError::Connect { node, .. }
            | ClientError::Unreachable { node, .. }
            | ClientError::Rpc { node, .. }
            | ClientError::BadRecord { node, .. } => node,
        }
    }

    /// The error without the node name (for messages that already name it).
    pub fn detail(&self) -> String {
        match self {
            ClientError::Connect { source, .. } => source.to_string(),
            ClientError::Unreachable { reason, .. } => format!("unreachable: {reason}"),
            ClientError::Rpc {
                method,
                code,
                message,
                ..
            } => format!("{method} failed: {message} ({code:?})"),
            ClientError::BadRecord {
                kind, name, reason, ..
            } => {
                format!("executor sent an unreadable record {kind}/{name}: {reason}")
            }
        }
    }

    /// The gRPC code when the executor answered, `Unavailable` when it could not be reached.
    pub fn code(&self) -> tonic::Code {
        match self {
            ClientError::Connect { .. } | ClientError::Unreachable { .. } => {
                tonic::Code::Unavailable
            }
            ClientError::Rpc { code, .. } => *code,
            ClientError::BadRecord { .. } => tonic::Code::DataLoss,
        }
    }
}

/// A connected executor.
#[derive(Debug, Clone)]
pub struct ExecutorClient {
    node: String,
    endpoint: Endpoint,
    raw: RawClient<Channel>,
}

/// Converts a model record to its wire form.
pub fn record_to_wire(r: &Record) -> v1::Record {
    v1::Record {
        kind: r.key.kind.as_str().to_string(),
        name: r.key.name.clone(),
        revision: r.revision,
        deleted: r.deleted,
        spec_json: r.spec.to_string(),
    }
}

/// Converts a wire record to the model's, checking kind and JSON.
pub fn record_from_wire(r: &v1::Record) -> Result<Record, String> {
    let kind = RecordKind::parse(&r.kind).map_err(|e| e.to_string())?;
    let spec = serde_json::from_str(&r.spec_json).map_err(|e| format!("spec is not JSON: {e}"))?;
    Ok(Record {
        key: RecordKey::new(kind, r.name.clone()),
        revision: r.revision,
        deleted: r.deleted,
        spec,
    })
}

impl ExecutorClient {
    /// Connects to `node`'s executor with default options.
    pub async fn connect(node: &str, endpoint: &Endpoint) -> Result<Self, ClientError> {
        Self::connect_with(node, endpoint, &TransportOptions::default()).await
    }

    /// Connects to `node`'s executor.
    pub async fn connect_with(
        node: &str,
        endpoint: &Endpoint,
        opts: &TransportOptions,
    ) -> Result<Self, ClientError> {
        let channel =
            transport::connect(endpoint, opts)
                .await
                .map_err(|source| ClientError::Connect {
                    node: node.to_string(),
                    source,
                })?;
        Ok(Self {
            node: node.to_string(),
            endpoint: endpoint.clone(),
            raw: RawClient::new(channel),
        })
    }

    /// The node this client talks to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn rpc_err(&self, method: &'static str, s: tonic::Status) -> ClientError {
        ClientError::Rpc {
            node: self.node.clone(),
            method,
            code: s.code(),
            message: s.message().to_string(),
        }
    }

    fn records_from_wire(&self, recs: &[v1::Record]) -> Result<Vec<Record>, ClientError> {
        recs.iter()
            .map(|r| {
                record_from_wire(r).map_err(|reason| ClientError::BadRecord {
                    node: self.node.clone(),
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    reason,
                })
            })
            .collect()
    }

    /// Host facts, read fresh.
    pub async fn host_facts(&mut self) -> Result<v1::HostFacts, ClientError> {
        let r = self.raw.get_host_facts(v1::GetHostFactsRequest {}).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("GetHostFacts", s))
    }

    /// The node's status.
    pub async fn node_status(&mut self) -> Result<v1::NodeStatus, ClientError> {
        let r = self.raw.get_node_status(v1::GetNodeStatusRequest {}).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("GetNodeStatus", s))
    }

    /// Facts, status and records in one round trip, with records decoded.
    pub async fn observe(&mut self) -> Result<(v1::Observation, Vec<Record>), ClientError> {
        let r = self.raw.observe(v1::ObserveRequest {}).await;
        let obs = r
            .map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("Observe", s))?;
        let records = self.records_from_wire(&obs.records)?;
        Ok((obs, records))
    }

    /// Stored records, of one kind or all.
    pub async fn list_records(
        &mut self,
        kind: Option<RecordKind>,
    ) -> Result<Vec<Record>, ClientError> {
        let req = v1::ListRecordsRequest {
            kind: kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        };
        let r = self.raw.list_records(req).await;
        let resp = r
            .map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("ListRecords", s))?;
        self.records_from_wire(&resp.records)
    }

    /// Stores records (each kept only if newer than the stored one).
    pub async fn put_records(
        &mut self,
        records: &[Record],
    ) -> Result<Vec<v1::PutResult>, ClientError> {
        let req = v1::PutRecordsRequest {
            records: records.iter().map(record_to_wire).collect(),
        };
        let r = self.raw.put_records(req).await;
        r.map(|r| r.into_inner().results)
            .map_err(|s| self.rpc_err("PutRecords", s))
    }

    /// What the stored records overlaid with `overlay` would do, changing nothing.
    pub async fn predict(&mut self, overlay: &[Record]) -> Result<v1::Prediction, ClientError> {
        let req = v1::PredictRequest {
            overlay: overlay.iter().map(record_to_wire).collect(),
        };
        let r = self.raw.predict(req).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("Predict", s))
    }

    /// Candidate block devices, with the reasons excluded ones are excluded.
    pub async fn list_disks(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<v1::DiskCandidate>, ClientError> {
        let req = v1::ListDisksRequest {
            paths: paths.to_vec(),
        };
        let r = self.raw.list_disks(req).await;
        r.map(|r| r.into_inner().candidates)
            .map_err(|s| self.rpc_err("ListDisks", s))
    }

    /// Creates (or grows, or re-exports) a replica; idempotent.
    pub async fn ensure_replica(
        &mut self,
        req: v1::EnsureReplicaRequest,
    ) -> Result<v1::ReplicaResult, ClientError> {
        let r = self.raw.ensure_replica(req).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("EnsureReplica", s))
    }

    /// Removes a replica's export, then its lvol.
    pub async fn delete_replica(
        &mut self,
        req: v1::DeleteReplicaRequest,
    ) -> Result<v1::ReplicaResult, ClientError> {
        let r = self.raw.delete_replica(req).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("DeleteReplica", s))
    }

    /// Creates or repairs a volume's engine (raid1 and frontend) on this node; idempotent.
    pub async fn ensure_engine(
        &mut self,
        req: v1::EnsureEngineRequest,
    ) -> Result<v1::EngineResult, ClientError> {
        let r = self.raw.ensure_engine(req).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("EnsureEngine", s))
    }

    /// Tears a volume's engine down on this node.
    pub async fn delete_engine(
        &mut self,
        req: v1::DeleteEngineRequest,
    ) -> Result<v1::EngineResult, ClientError> {
        let r = self.raw.delete_engine(req).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("DeleteEngine", s))
    }

    /// Every volume object on this node, with replica and engine states.
    pub async fn list_volume_objects(
        &mut self,
    ) -> Result<v1::ListVolumeObjectsResponse, ClientError> {
        let r = self
            .raw
            .list_volume_objects(v1::ListVolumeObjectsRequest {})
            .await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("ListVolumeObjects", s))
    }

    /// Makes the node match its records now.
    pub async fn reconcile(&mut self) -> Result<v1::NodeStatus, ClientError> {
        let r = self.raw.reconcile(v1::ReconcileRequest {}).await;
        r.map(|r| r.into_inner())
            .map_err(|s| self.rpc_err("Reconcile", s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_round_trip_through_the_wire() {
        let r = Record {
            key: RecordKey::new(RecordKind::NodeV2, "node-1"),
            revision: 7,
            deleted: false,
            spec: json!({"node": "node-1", "enabled": false}),
        };
        assert_eq!(record_from_wire(&record_to_wire(&r)).unwrap(), r);
    }

    #[test]
    fn bad_wire_records_are_refused() {
        let mut w = v1::Record {
            kind: "nope".into(),
            name: "x".into(),
            ..Default::default()
        };
        assert!(
            record_from_wire(&w)
                .unwrap_err()
                .contains("unknown record kind")
        );
        w.kind = "volume".into();
        w.spec_json = "{".into();
        assert!(record_from_wire(&w).unwrap_err().contains("not JSON"));
    }
}
