//! The v2engine Terraform provider.
//!
//! - [`schema`]: Terraform schemas generated from the model.
//! - [`convert`]: Terraform values ↔ model specs (validation with attribute paths).
//! - [`context`]: the fleet and one observation of it per plan.
//! - [`resources`]: one module per resource.
//! - [`V2engineProvider`]: the `tfplugin::Provider` that dispatches to them.

pub mod context;
pub mod convert;
pub mod data;
pub mod resources;
pub mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use client::transport::TransportOptions;
use client::{Endpoint, Fleet};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, ConfigureRequest, ImportRequest, ImportResponse, ImportedResource,
    PlanRequest, PlanResponse, ReadDataRequest, ReadDataResponse, ReadRequest, ReadResponse,
    ValidateRequest,
};
use tfplugin::{AttributePath, Diagnostic, Diagnostics, Provider, ProviderSchema, Value};

use context::Context;
use resources::Res;

/// The provider: its schema, resources and (once configured) its fleet.
#[derive(Debug)]
pub struct V2engineProvider {
    resources: BTreeMap<String, Res>,
    schema: ProviderSchema,
    schema_error: Option<String>,
    ctx: OnceLock<Arc<Context>>,
}

impl Default for V2engineProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl V2engineProvider {
    /// A provider with every resource of the model.
    pub fn new() -> Self {
        let (schema, resources, schema_error) =
            match (schema::provider_schema(), model::schema::resources()) {
                (Ok(s), Ok(rs)) => {
                    let resources = rs
                        .into_iter()
                        .map(|r| {
                            let name = format!("{}{}", schema::PREFIX, r.name);
                            let ty = s
                                .resources
                                .get(&name)
                                .map(|x| x.value_type())
                                .unwrap_or(tfplugin::Type::Dynamic);
                            (name, Res { schema: r, ty })
                        })
                        .collect();
                    (s, resources, None)
                }
                (Err(e), _) | (_, Err(e)) => (
                    ProviderSchema::default(),
                    BTreeMap::new(),
                    Some(e.to_string()),
                ),
            };
        Self {
            resources,
            schema,
            schema_error,
            ctx: OnceLock::new(),
        }
    }

    fn ctx(&self) -> Result<&Arc<Context>, Diagnostics> {
        self.ctx.get().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "the v2engine provider was used before ConfigureProvider",
            )
            .into()
        })
    }

    fn res(&self, type_name: &str) -> Result<&Res, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("{type_name} is not a v2engine resource"),
            )
            .into()
        })
    }
}

/// Parses the provider block into fleet endpoints and transport options.
pub fn parse_config(
    config: &Value,
) -> Result<(BTreeMap<String, Endpoint>, TransportOptions, u64), Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut endpoints = BTreeMap::new();
    match config.get_attr("nodes") {
        Some(Value::Map(m)) | Some(Value::Object(m)) => {
            for (name, node) in m {
                let path = AttributePath::attribute("nodes").key(name).attr("endpoint");
                if let Err(e) = model::validate::check_object_name(name) {
                    diags.push(
                        Diagnostic::error("Invalid node name", e)
                            .with_attribute(AttributePath::attribute("nodes").key(name)),
                    );
                    continue;
                }
                match node
                    .get_attr("endpoint")
                    .and_then(Value::as_str)
                    .map(str::parse::<Endpoint>)
                {
                    Some(Ok(ep)) => {
                        endpoints.insert(name.clone(), ep);
                    }
                    Some(Err(e)) => diags.push(
                        Diagnostic::error("Invalid endpoint", e.to_string()).with_attribute(path),
                    ),
                    None => diags.push(
                        Diagnostic::error(
                            "Missing endpoint",
                            format!("node {name} needs an endpoint known at plan time"),
                        )
                        .with_attribute(path),
                    ),
                }
            }
        }
        Some(v) if v.is_unknown() => diags.push(
            Diagnostic::error(
                "Unknown nodes",
                "the provider's nodes must be known at plan time",
            )
            .with_attribute(AttributePath::attribute("nodes")),
        ),
        _ => diags.push(
            Diagnostic::error("Missing nodes", "the provider needs a nodes map")
                .with_attribute(AttributePath::attribute("nodes")),
        ),
    }
    let file = |name: &str| {
        config
            .get_attr(name)
            .and_then(Value::as_str)
            .map(PathBuf::from)
    };
    let opts = TransportOptions {
        ssh_private_key_file: file("ssh_private_key_file"),
        ssh_known_hosts_file: file("ssh_known_hosts_file"),
        ..TransportOptions::default()
    };
    let uses_ssh = endpoints
        .values()
        .any(|e| matches!(e, Endpoint::Ssh { .. }));
    if uses_ssh && opts.ssh_known_hosts_file.is_none() {
        diags.push(
            Diagnostic::error(
                "Missing ssh_known_hosts_file",
                "ssh endpoints need a known_hosts file to verify host keys against",
            )
            .with_attribute(AttributePath::attribute("ssh_known_hosts_file")),
        );
    }
    let over = match config
        .get_attr("over_provisioning_percent")
        .and_then(Value::as_i64)
    {
        None => 100,
        Some(p) if (1..=10_000).contains(&p) => u64::try_from(p).unwrap_or(100),
        Some(p) => {
            diags.push(
                Diagnostic::error(
                    "Invalid over_provisioning_percent",
                    format!("must be 1 to 10000, got {p}"),
                )
                .with_attribute(AttributePath::attribute("over_provisioning_percent")),
            );
            100
        }
    };
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok((endpoints, opts, over))
    }
}

async fn with_timeout<T>(
    d: std::time::Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, Diagnostics>>,
) -> Result<T, Diagnostics> {
    tokio::time::timeout(d, f).await.unwrap_or_else(|_| {
        Err(Diagnostic::error(
            format!("Timed out: {what}"),
            format!("gave up after {}s (see the timeouts block)", d.as_secs()),
        )
        .into())
    })
}

impl Provider for V2engineProvider {
    fn schema(&self) -> ProviderSchema {
        self.schema.clone()
    }

    async fn validate_provider_config(&self, config: Value) -> Diagnostics {
        if let Some(e) = &self.schema_error {
            return Diagnostic::error("Broken provider schema", e.clone()).into();
        }
        match config.get_attr("nodes") {
            Some(v) if v.is_wholly_known() => parse_config(&config).err().unwrap_or_default(),
            _ => Diagnostics::new(),
        }
    }

    async fn configure(&self, request: ConfigureRequest) -> Diagnostics {
        match parse_config(&request.config) {
            Ok((endpoints, opts, over)) => {
                let _ = self
                    .ctx
                    .set(Arc::new(Context::new(Fleet::new(endpoints, opts), over)));
                Diagnostics::new()
            }
            Err(d) => d,
        }
    }

    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics {
        let Ok(res) = self.res(&request.type_name) else {
            return Diagnostics::new();
        };
        let result = match res.schema.name.as_str() {
            "data_engine_setting" => convert::spec_from_value(
                &request.config,
                &res.schema,
                model::DataEngineSetting::validate,
            )
            .map(|_| ()),
            "node_v2" => {
                convert::spec_from_value(&request.config, &res.schema, model::NodeV2::validate)
                    .map(|_| ())
            }
            "storage_class" => convert::spec_from_value(
                &request.config,
                &res.schema,
                model::StorageClass::validate,
            )
            .map(|_| ()),
            "block_disk" => {
                convert::spec_from_value(&request.config, &res.schema, model::BlockDisk::validate)
                    .map(|_| ())
            }
            "volume" => {
                convert::spec_from_value(&request.config, &res.schema, model::Volume::validate)
                    .map(|_| ())
            }
            _ => Ok(()),
        };
        let mut d = result.err().unwrap_or_default();
        if let Some(t) = request.config.get_attr("timeouts").filter(|t| !t.is_null()) {
            for op in ["create", "update", "delete"] {
                if t.get_attr(op)
                    .is_some_and(|v| v.is_wholly_known() && !v.is_null())
                    && let Err(e) = convert::timeout(&request.config, op)
                {
                    d.extend(e);
                }
            }
        }
        d
    }

    async fn read_resource(&self, request: ReadRequest) -> Result<ReadResponse, Diagnostics> {
        let ctx = self.ctx()?;
        let res = self.res(&request.type_name)?;
        match res.schema.name.as_str() {
            "data_engine_setting" => resources::setting::read(ctx, res, request).await,
            "node_v2" => resources::node_v2::read(ctx, res, request).await,
            "storage_class" => resources::storage_class::read(ctx, res, request).await,
            "block_disk" => resources::block_disk::read(ctx, res, request).await,
            "volume" => resources::volume::read(ctx, res, request).await,
            other => Err(not_yet(other)),
        }
    }

    async fn plan_resource_change(
        &self,
        request: PlanRequest,
    ) -> Result<PlanResponse, Diagnostics> {
        let ctx = self.ctx()?;
        let res = self.res(&request.type_name)?;
        match res.schema.name.as_str() {
            "data_engine_setting" => resources::setting::plan(ctx, res, request).await,
            "node_v2" => resources::node_v2::plan(ctx, res, request).await,
            "storage_class" => resources::storage_class::plan(ctx, res, request).await,
            "block_disk" => resources::block_disk::plan(ctx, res, request).await,
            "volume" => resources::volume::plan(ctx, res, request).await,
            other => Err(not_yet(other)),
        }
    }

    async fn apply_resource_change(
        &self,
        request: ApplyRequest,
    ) -> Result<ApplyResponse, Diagnostics> {
        let ctx = self.ctx()?;
        let res = self.res(&request.type_name)?;
        let (op, obj) = if request.is_destroy() {
            ("delete", &request.prior_state)
        } else if request.is_create() {
            ("create", &request.planned_state)
        } else {
            ("update", &request.planned_state)
        };
        let limit = convert::timeout(obj, op)?;
        let what = format!("{op} {}", request.type_name);
        match res.schema.name.as_str() {
            "data_engine_setting" => {
                with_timeout(limit, &what, resources::setting::apply(ctx, res, request)).await
            }
            "node_v2" => {
                with_timeout(limit, &what, resources::node_v2::apply(ctx, res, request)).await
            }
            "storage_class" => {
                with_timeout(
                    limit,
                    &what,
                    resources::storage_class::apply(ctx, res, request),
                )
                .await
            }
            "block_disk" => {
                with_timeout(
                    limit,
                    &what,
                    resources::block_disk::apply(ctx, res, request),
                )
                .await
            }
            "volume" => {
                with_timeout(limit, &what, resources::volume::apply(ctx, res, request)).await
            }
            other => Err(not_yet(other)),
        }
    }

    async fn import_resource_state(
        &self,
        request: ImportRequest,
    ) -> Result<ImportResponse, Diagnostics> {
        let ctx = self.ctx()?;
        let res = self.res(&request.type_name)?;
        let state = match res.schema.name.as_str() {
            "data_engine_setting" => resources::setting::import(ctx, res, &request.id).await?,
            "node_v2" => resources::node_v2::import(ctx, res, &request.id).await?,
            "storage_class" => resources::storage_class::import(ctx, res, &request.id).await?,
            "block_disk" => resources::block_disk::import(ctx, res, &request.id).await?,
            "volume" => resources::volume::import(ctx, res, &request.id).await?,
            other => return Err(not_yet(other)),
        };
        Ok(ImportResponse {
            imported: vec![ImportedResource {
                type_name: request.type_name,
                state,
                private: vec![],
            }],
            diagnostics: Diagnostics::new(),
        })
    }

    async fn read_data_source(
        &self,
        request: ReadDataRequest,
    ) -> Result<ReadDataResponse, Diagnostics> {
        let ctx = self.ctx()?;
        data::read(ctx, &self.schema, request).await
    }
}

fn not_yet(resource: &str) -> Diagnostics {
    Diagnostic::error(
        format!("v2engine_{resource} is not available in this build"),
        "this resource's executor operations are not implemented yet; see the project's issues",
    )
    .into()
}
