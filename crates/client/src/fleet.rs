//! Many executors, called in parallel.
//!
//! A plan reads each node once ([`Fleet::observe_all`]), not once per resource; writes of
//! cluster-scoped records go to every node that answers ([`Fleet::put_some`]).

use std::collections::BTreeMap;

use futures::future::join_all;
use model::Record;
use model::record::{Merged, merge};
use proto::v1;

use crate::endpoint::Endpoint;
use crate::executor::{ClientError, ExecutorClient};
use crate::transport::TransportOptions;

/// A fleet-wide call that failed on some nodes.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A node name that is not in the fleet.
    #[error("node {node:?} is not one of the configured nodes ({known})")]
    UnknownNode {
        /// The name asked for.
        node: String,
        /// The configured names, comma-separated.
        known: String,
    },
    /// One or more nodes failed; every failure is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Nodes(Vec<ClientError>),
}

/// What one `observe_all` returned for a node.
#[derive(Debug, Clone)]
pub struct NodeObservation {
    /// Facts, status, raw records.
    pub observation: v1::Observation,
    /// Records decoded.
    pub records: Vec<Record>,
}

/// The configured nodes and how to reach them. Connections are opened on first use and
/// kept for the fleet's lifetime.
#[derive(Debug)]
pub struct Fleet {
    endpoints: BTreeMap<String, Endpoint>,
    options: TransportOptions,
    clients: tokio::sync::Mutex<BTreeMap<String, ExecutorClient>>,
    /// Nodes found down in this fleet's lifetime (one run), with the first failure: not
    /// dialled again, so a dead node costs one connect timeout per run, not one per call.
    down: tokio::sync::Mutex<BTreeMap<String, String>>,
}

/// [`Fleet::observe_reachable`]: the nodes that answered, and those that are down.
#[derive(Debug, Default)]
pub struct PartialObservation {
    /// Nodes that answered.
    pub nodes: BTreeMap<String, NodeObservation>,
    /// Nodes that are down or cut off, with why.
    pub down: BTreeMap<String, String>,
}

impl Fleet {
    /// A fleet over `endpoints` (node name → endpoint).
    pub fn new(endpoints: BTreeMap<String, Endpoint>, options: TransportOptions) -> Self {
        Self {
            endpoints,
            options,
            clients: tokio::sync::Mutex::new(BTreeMap::new()),
            down: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Node names, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.endpoints.keys().map(String::as_str)
    }

    /// Checks that `node` is configured; the error lists the known ones.
    pub fn check_node(&self, node: &str) -> Result<(), FleetError> {
        if self.endpoints.contains_key(node) {
            Ok(())
        } else {
            Err(FleetError::UnknownNode {
                node: node.to_string(),
                known: self
                    .endpoints
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// A connected client for `node` (cached).
    pub async fn client(&self, node: &str) -> Result<ExecutorClient, FleetError> {
        self.check_node(node)?;
        self.connect_node(node)
            .await
            .map_err(|e| FleetError::Nodes(vec![e]))
    }

    async fn connect_node(&self, node: &str) -> Result<ExecutorClient, ClientError> {
        if let Some(c) = self.clients.lock().await.get(node) {
            return Ok(c.clone());
        }
        if let Some(reason) = self.down.lock().await.get(node) {
            return Err(ClientError::Unreachable {
                node: node.to_string(),
                reason: reason.clone(),
            });
        }
        let endpoint = self.endpoints.get(node).ok_or_else(|| ClientError::Rpc {
            node: node.to_string(),
            method: "connect",
            code: tonic::Code::NotFound,
            message: "node is not in the fleet".into(),
        })?;
        let c = match ExecutorClient::connect_with(node, endpoint, &self.options).await {
            Ok(c) => c,
            Err(e) => {
                if e.is_node_down() {
                    self.down.lock().await.insert(node.to_string(), e.detail());
                }
                return Err(e);
            }
        };
        self.clients
            .lock()
            .await
            .insert(node.to_string(), c.clone());
        Ok(c)
    }

    /// Runs `f` on every node in parallel; all errors are collected.
    pub async fn on_all<T, F, Fut>(&self, f: F) -> Result<BTreeMap<String, T>, FleetError>
    where
        F: Fn(ExecutorClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let futs = self.endpoints.keys().map(|node| {
            let f = &f;
            async move {
                match self.connect_node(node).await {
                    Ok(c) => (node.clone(), f(c).await),
                    Err(e) => (node.clone(), Err(e)),
                }
            }
        });
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (node, r) in join_all(futs).await {
            match r {
                Ok(v) => {
                    out.insert(node, v);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(FleetError::Nodes(errors))
        }
    }

    /// Observes every node once, in parallel.
    pub async fn observe_all(&self) -> Result<BTreeMap<String, NodeObservation>, FleetError> {
        self.on_all(|mut c| async move {
            let (observation, records) = c.observe().await?;
            Ok(NodeObservation {
                observation,
                records,
            })
        })
        .await
    }

    /// Observes every node once, in parallel, tolerating nodes that are down (see
    /// [`ClientError::is_node_down`]); any other failure (host key, credentials, an
    /// executor error) is still an error.
    pub async fn observe_reachable(&self) -> Result<PartialObservation, FleetError> {
        let futs = self.endpoints.keys().map(|node| async move {
            let r = match self.connect_node(node).await {
                Ok(mut c) => c.observe().await,
                Err(e) => Err(e),
            };
            (node.clone(), r)
        });
        let mut out = PartialObservation::default();
        let mut errors = Vec::new();
        for (node, r) in join_all(futs).await {
            match r {
                Ok((observation, records)) => {
                    out.nodes.insert(
                        node,
                        NodeObservation {
                            observation,
                            records,
                        },
                    );
                }
                Err(e) if e.is_node_down() => {
                    out.down.insert(node, e.detail());
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(FleetError::Nodes(errors))
        }
    }

    /// Writes `records` to the nodes named in `nodes`, in parallel.
    pub async fn put_some(&self, nodes: &[String], records: &[Record]) -> Result<(), FleetError> {
        let futs = nodes.iter().map(|node| async move {
            match self.connect_node(node).await {
                Ok(mut c) => c.put_records(records).await.map(|_| ()),
                Err(e) => Err(e),
            }
        });
        let errors: Vec<ClientError> = join_all(futs)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FleetError::Nodes(errors))
        }
    }

    /// Reconciles every node, returning each status.
    pub async fn reconcile_all(&self) -> Result<BTreeMap<String, v1::NodeStatus>, FleetError> {
        self.on_all(|mut c| async move { c.reconcile().await })
            .await
    }
}

/// Merges the records of observed nodes ("highest revision wins", with drift).
pub fn merge_observations(obs: &BTreeMap<String, NodeObservation>) -> Merged {
    merge(obs.iter().map(|(n, o)| (n.as_str(), o.records.as_slice())))
}
