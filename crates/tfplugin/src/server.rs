//! The `tfplugin6.Provider` gRPC service: maps each RPC to a [`Provider`]
//! call, decoding and encoding `DynamicValue`s with the schema of the type
//! concerned. Every failure a user can cause (bad values, unknown types,
//! provider errors, even a provider panic) becomes an error diagnostic, never
//! a gRPC error.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tonic::{Request, Response, Status};

use crate::diag::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::proto::tfplugin6 as pb;
use crate::provider::{
    ApplyRequest, ConfigureRequest, ImportRequest, PlanRequest, Provider, ReadDataRequest,
    ReadRequest, UpgradeStateRequest, ValidateRequest,
};
use crate::schema::{ProviderSchema, Schema};
use crate::types::Type;
use crate::value::Value;

/// Whether a type name refers to a managed resource or a data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Resource,
    DataSource,
}

/// A schema with its value type computed once.
#[derive(Debug)]
struct Typed {
    schema: Schema,
    ty: Type,
}

impl Typed {
    fn new(schema: &Schema) -> Typed {
        Typed {
            schema: schema.clone(),
            ty: schema.value_type(),
        }
    }
}

/// The gRPC service wrapping a [`Provider`].
pub struct ProviderService<P> {
    provider: Arc<P>,
    provider_schema: Typed,
    resources: BTreeMap<String, Typed>,
    data_sources: BTreeMap<String, Typed>,
    /// The GetProviderSchema answer, built once: Terraform asks for it many times per run.
    schema_response: pb::get_provider_schema::Response,
}

impl<P: Provider> ProviderService<P> {
    /// Wraps `provider`, reading its schema once.
    pub fn new(provider: Arc<P>) -> ProviderService<P> {
        let ProviderSchema {
            provider: provider_schema,
            resources,
            data_sources,
        } = provider.schema();
        let resources: BTreeMap<String, Typed> = resources
            .iter()
            .map(|(k, s)| (k.clone(), Typed::new(s)))
            .collect();
        let data_sources: BTreeMap<String, Typed> = data_sources
            .iter()
            .map(|(k, s)| (k.clone(), Typed::new(s)))
            .collect();
        let map = |m: &BTreeMap<String, Typed>| {
            m.iter()
                .map(|(k, t)| (k.clone(), t.schema.to_proto()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let schema_response = pb::get_provider_schema::Response {
            provider: Some(provider_schema.to_proto()),
            resource_schemas: map(&resources),
            data_source_schemas: map(&data_sources),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(Self::capabilities()),
            functions: std::collections::HashMap::new(),
            ephemeral_resource_schemas: std::collections::HashMap::new(),
        };
        ProviderService {
            provider,
            provider_schema: Typed::new(&provider_schema),
            resources,
            data_sources,
            schema_response,
        }
    }

    fn lookup(&self, kind: Kind, type_name: &str) -> Result<&Typed, Diagnostics> {
        let (map, what) = match kind {
            Kind::Resource => (&self.resources, "resource type"),
            Kind::DataSource => (&self.data_sources, "data source"),
        };
        map.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                format!("Unknown {what}"),
                format!("this provider has no {what} named {type_name:?}"),
            )
            .into()
        })
    }

    fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: true,
            // Every call needs no prior GetProviderSchema: Terraform may use its cached
            // copy of the schema (from GetMetadata's type names) instead of asking again.
            get_provider_schema_optional: true,
            move_resource_state: false,
        }
    }
}

/// Runs a provider call, turning a panic into an error diagnostic.
async fn guarded<T>(
    what: &str,
    fut: impl Future<Output = Result<T, Diagnostics>>,
) -> Result<T, Diagnostics> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!(operation = what, panic = %message, "provider panicked");
            Err(Diagnostic::error(
                "Provider bug",
                format!("the provider panicked during {what}: {message}; please report this"),
            )
            .into())
        }
    }
}

/// Decodes a `DynamicValue` (msgpack preferred, JSON accepted); absent means null.
pub fn decode_dynamic_value(
    value: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostics> {
    let Some(dv) = value else {
        return Ok(Value::Null);
    };
    let decoded = if !dv.msgpack.is_empty() {
        crate::msgpack::decode(&dv.msgpack, ty).map_err(|e| e.to_string())
    } else if !dv.json.is_empty() {
        crate::json::decode(&dv.json, ty).map_err(|e| e.to_string())
    } else {
        Ok(Value::Null)
    };
    decoded.map_err(|e| {
        Diagnostic::error(
            "Invalid value from Terraform",
            format!("could not decode {what}: {e}"),
        )
        .into()
    })
}

/// Encodes a value as a msgpack `DynamicValue`.
pub fn encode_dynamic_value(
    value: &Value,
    ty: &Type,
    what: &str,
) -> Result<pb::DynamicValue, Diagnostics> {
    crate::msgpack::encode(value, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            Diagnostic::error(
                "Provider produced an invalid value",
                format!("could not encode {what}: {e}; this is a bug in the provider"),
            )
            .into()
        })
}

/// Collects diagnostics from a `Result` whose error is diagnostics.
fn split<T>(result: Result<T, Diagnostics>, diagnostics: &mut Diagnostics) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(d) => {
            diagnostics.extend(d);
            None
        }
    }
}

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(Self::capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .data_sources
                .keys()
                .map(|t| pb::get_metadata::DataSourceMetadata {
                    type_name: t.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|t| pb::get_metadata::ResourceMetadata {
                    type_name: t.clone(),
                })
                .collect(),
            functions: Vec::new(),
            ephemeral_resources: Vec::new(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(self.schema_response.clone()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded("ValidateProviderConfig", async {
            let config = decode_dynamic_value(
                req.config.as_ref(),
                &self.provider_schema.ty,
                "provider config",
            )?;
            Ok(self.provider.validate_provider_config(config).await)
        })
        .await
        .unwrap_or_else(|d| d);
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded("ValidateResourceConfig", async {
            let typed = self.lookup(Kind::Resource, &req.type_name)?;
            let config = decode_dynamic_value(req.config.as_ref(), &typed.ty, "resource config")?;
            Ok(self
                .provider
                .validate_resource_config(ValidateRequest {
                    type_name: req.type_name.clone(),
                    config,
                })
                .await)
        })
        .await
        .unwrap_or_else(|d| d);
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded("ValidateDataResourceConfig", async {
            let typed = self.lookup(Kind::DataSource, &req.type_name)?;
            let config =
                decode_dynamic_value(req.config.as_ref(), &typed.ty, "data source config")?;
            Ok(self
                .provider
                .validate_data_source_config(ValidateRequest {
                    type_name: req.type_name.clone(),
                    config,
                })
                .await)
        })
        .await
        .unwrap_or_else(|d| d);
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let upgraded = guarded("UpgradeResourceState", async {
            let typed = self.lookup(Kind::Resource, &req.type_name)?;
            let response = self
                .provider
                .upgrade_resource_state(UpgradeStateRequest {
                    type_name: req.type_name.clone(),
                    version: req.version,
                    raw_json: req
                        .raw_state
                        .as_ref()
                        .map(|r| r.json.clone())
                        .unwrap_or_default(),
                    current_type: typed.ty.clone(),
                })
                .await?;
            let encoded = encode_dynamic_value(&response.state, &typed.ty, "upgraded state")?;
            Ok((encoded, response.diagnostics))
        })
        .await;
        let upgraded_state = split(upgraded, &mut diagnostics).map(|(state, warnings)| {
            diagnostics.extend(warnings);
            state
        });
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = request.into_inner();
        let diagnostics = guarded("ConfigureProvider", async {
            let config = decode_dynamic_value(
                req.config.as_ref(),
                &self.provider_schema.ty,
                "provider config",
            )?;
            Ok(self
                .provider
                .configure(ConfigureRequest {
                    terraform_version: req.terraform_version.clone(),
                    config,
                })
                .await)
        })
        .await
        .unwrap_or_else(|d| d);
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let result = guarded("ReadResource", async {
            let typed = self.lookup(Kind::Resource, &req.type_name)?;
            let current_state =
                decode_dynamic_value(req.current_state.as_ref(), &typed.ty, "current state")?;
            let response = self
                .provider
                .read_resource(ReadRequest {
                    type_name: req.type_name.clone(),
                    current_state,
                    private: req.private.clone(),
                })
                .await?;
            let new_state =
                encode_dynamic_value(&response.new_state, &typed.ty, "refreshed state")?;
            Ok((new_state, response.private, response.diagnostics))
        })
        .await;
        // On failure keep what Terraform has: the resource must not vanish
        // from state because a refresh failed.
        let (new_state, private) = match split(result, &mut diagnostics) {
            Some((state, private, warnings)) => {
                diagnostics.extend(warnings);
                (Some(state), private)
            }
            None => (req.current_state.clone(), req.private.clone()),
        };
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics.to_proto(),
            private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let result = guarded("PlanResourceChange", async {
            let typed = self.lookup(Kind::Resource, &req.type_name)?;
            let prior_state =
                decode_dynamic_value(req.prior_state.as_ref(), &typed.ty, "prior state")?;
            let proposed_new_state = decode_dynamic_value(
                req.proposed_new_state.as_ref(),
                &typed.ty,
                "proposed new state",
            )?;
            let config = decode_dynamic_value(req.config.as_ref(), &typed.ty, "config")?;
            let response = self
                .provider
                .plan_resource_change(PlanRequest {
                    type_name: req.type_name.clone(),
                    prior_state,
                    proposed_new_state,
                    config,
                    prior_private: req.prior_private.clone(),
                })
                .await?;
            let planned =
                encode_dynamic_value(&response.planned_state, &typed.ty, "planned state")?;
            Ok((planned, response))
        })
        .await;
        let mut out = pb::plan_resource_change::Response::default();
        if let Some((planned, response)) = split(result, &mut diagnostics) {
            diagnostics.extend(response.diagnostics);
            out.planned_state = Some(planned);
            out.requires_replace = response
                .requires_replace
                .iter()
                .map(AttributePath::to_proto)
                .collect();
            out.planned_private = response.planned_private;
        }
        out.diagnostics = diagnostics.to_proto();
        Ok(Response::new(out))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let result = guarded("ApplyResourceChange", async {
            let typed = self.lookup(Kind::Resource, &req.type_name)?;
            let prior_state =
                decode_dynamic_value(req.prior_state.as_ref(), &typed.ty, "prior state")?;
            let planned_state =
                decode_dynamic_value(req.planned_state.as_ref(), &typed.ty, "planned state")?;
            let config = decode_dynamic_value(req.config.as_ref(), &typed.ty, "config")?;
            let response = self
                .provider
                .apply_resource_change(ApplyRequest {
                    type_name: req.type_name.clone(),
                    prior_state,
                    planned_state,
                    config,
                    planned_private: req.planned_private.clone(),
                })
                .await?;
            let new_state = encode_dynamic_value(&response.new_state, &typed.ty, "new state")?;
            Ok((new_state, response.private, response.diagnostics))
        })
        .await;
        // On failure report the prior state, so Terraform keeps tracking an
        // object that still exists (and records nothing for a failed create).
        let (new_state, private) = match split(result, &mut diagnostics) {
            Some((state, private, warnings)) => {
                diagnostics.extend(warnings);
                (Some(state), private)
            }
            None => (req.prior_state.clone(), req.planned_private.clone()),
        };
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private,
            diagnostics: diagnostics.to_proto(),
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let result = guarded("ImportResourceState", async {
            self.lookup(Kind::Resource, &req.type_name)?;
            let response = self
                .provider
                .import_resource_state(ImportRequest {
                    type_name: req.type_name.clone(),
                    id: req.id.clone(),
                })
                .await?;
            let mut imported = Vec::with_capacity(response.imported.len());
            for item in response.imported {
                let type_name = if item.type_name.is_empty() {
                    req.type_name.clone()
                } else {
                    item.type_name
                };
                let typed = self.lookup(Kind::Resource, &type_name)?;
                imported.push(pb::import_resource_state::ImportedResource {
                    state: Some(encode_dynamic_value(
                        &item.state,
                        &typed.ty,
                        "imported state",
                    )?),
                    type_name,
                    private: item.private,
                });
            }
            Ok((imported, response.diagnostics))
        })
        .await;
        let imported_resources = split(result, &mut diagnostics)
            .map(|(imported, warnings)| {
                diagnostics.extend(warnings);
                imported
            })
            .unwrap_or_default();
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diagnostics.to_proto(),
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        request: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let req = request.into_inner();
        let diagnostics: Diagnostics = Diagnostic::error(
            "Move not supported",
            format!(
                "this provider cannot move state from {} to {}",
                req.source_type_name, req.target_type_name
            ),
        )
        .into();
        Ok(Response::new(pb::move_resource_state::Response {
            target_state: None,
            diagnostics: diagnostics.to_proto(),
            target_private: Vec::new(),
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = request.into_inner();
        let mut diagnostics = Diagnostics::new();
        let result = guarded("ReadDataSource", async {
            let typed = self.lookup(Kind::DataSource, &req.type_name)?;
            let config =
                decode_dynamic_value(req.config.as_ref(), &typed.ty, "data source config")?;
            let response = self
                .provider
                .read_data_source(ReadDataRequest {
                    type_name: req.type_name.clone(),
                    config,
                })
                .await?;
            let state = encode_dynamic_value(&response.state, &typed.ty, "data source state")?;
            Ok((state, response.diagnostics))
        })
        .await;
        let state = split(result, &mut diagnostics).map(|(state, warnings)| {
            diagnostics.extend(warnings);
            state
        });
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: diagnostics.to_proto(),
            deferred: None,
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: no_ephemeral(&request.into_inner().type_name).to_proto(),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: no_ephemeral(&request.into_inner().type_name).to_proto(),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: no_ephemeral(&request.into_inner().type_name).to_proto(),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: no_ephemeral(&request.into_inner().type_name).to_proto(),
        }))
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn call_function(
        &self,
        request: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!(
                    "this provider has no function named {:?}",
                    request.into_inner().name
                ),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        let error = match guarded("StopProvider", async { Ok(self.provider.stop().await) }).await {
            Ok(Ok(())) => String::new(),
            Ok(Err(message)) => message,
            Err(d) => d.to_string(),
        };
        Ok(Response::new(pb::stop_provider::Response { error }))
    }
}

fn no_ephemeral(type_name: &str) -> Diagnostics {
    Diagnostic::error(
        "Unknown ephemeral resource type",
        format!("this provider has no ephemeral resource type named {type_name:?}"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApplyResponse, PlanResponse, ReadResponse};
    use crate::schema::{Attribute, Block};
    use pb::provider_server::Provider as _;

    /// A provider whose behaviour is steered by the `name` attribute:
    /// `fail` returns an error at `name`, `panic` panics, anything else works.
    struct Steered;

    fn thing_schema() -> Schema {
        Schema::new(
            1,
            Block::new()
                .attribute(Attribute::required("name", Type::String))
                .attribute(Attribute::computed("id", Type::String)),
        )
    }

    fn name_of(v: &Value) -> &str {
        v.get_attr("name").and_then(Value::as_str).unwrap_or("")
    }

    fn steer(v: &Value) -> Result<(), Diagnostics> {
        match name_of(v) {
            "fail" => Err(Diagnostic::error("Refused", "on purpose")
                .with_attribute(AttributePath::attribute("name"))
                .into()),
            "panic" => panic!("steered into a panic"),
            _ => Ok(()),
        }
    }

    impl Provider for Steered {
        fn schema(&self) -> ProviderSchema {
            ProviderSchema {
                provider: Schema::default(),
                resources: [("test_thing".to_owned(), thing_schema())].into(),
                data_sources: [("test_thing".to_owned(), thing_schema())].into(),
            }
        }

        async fn configure(&self, _request: ConfigureRequest) -> Diagnostics {
            Diagnostics::new()
        }

        async fn read_resource(&self, request: ReadRequest) -> Result<ReadResponse, Diagnostics> {
            steer(&request.current_state)?;
            Ok(ReadResponse {
                new_state: request.current_state,
                private: b"read".to_vec(),
                diagnostics: Diagnostics::new(),
            })
        }

        async fn plan_resource_change(
            &self,
            request: PlanRequest,
        ) -> Result<PlanResponse, Diagnostics> {
            steer(&request.proposed_new_state)?;
            let mut plan = PlanResponse::new(
                thing_schema()
                    .block
                    .unknown_computed_nulls(&request.proposed_new_state),
            );
            plan.requires_replace.push(AttributePath::attribute("name"));
            plan.planned_private = b"planned".to_vec();
            plan.diagnostics.warning("Heads up", "");
            Ok(plan)
        }

        async fn apply_resource_change(
            &self,
            request: ApplyRequest,
        ) -> Result<ApplyResponse, Diagnostics> {
            steer(&request.planned_state)?;
            let mut new_state = request.planned_state;
            new_state.set_attr("id", Value::from("id-1"));
            Ok(ApplyResponse {
                new_state,
                private: request.planned_private,
                diagnostics: Diagnostics::new(),
            })
        }
    }

    fn service() -> ProviderService<Steered> {
        ProviderService::new(Arc::new(Steered))
    }

    fn dv(value: &Value) -> Option<pb::DynamicValue> {
        Some(encode_dynamic_value(value, &thing_schema().value_type(), "test").unwrap())
    }

    fn thing(name: &str) -> Value {
        Value::object([("name", Value::from(name)), ("id", Value::Null)])
    }

    fn plan_request(name: &str) -> pb::plan_resource_change::Request {
        pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: None,
            proposed_new_state: dv(&thing(name)),
            config: dv(&thing(name)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn schema_and_metadata_list_types_and_capabilities() {
        let svc = service();
        let schema = svc
            .get_provider_schema(Request::new(pb::get_provider_schema::Request {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(schema.resource_schemas["test_thing"].version, 1);
        assert!(schema.data_source_schemas.contains_key("test_thing"));
        assert!(schema.server_capabilities.unwrap().plan_destroy);
        let meta = svc
            .get_metadata(Request::new(pb::get_metadata::Request {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.resources[0].type_name, "test_thing");
        assert_eq!(meta.data_sources[0].type_name, "test_thing");
    }

    #[tokio::test]
    async fn plan_encodes_state_replace_paths_private_and_warnings() {
        let resp = service()
            .plan_resource_change(Request::new(plan_request("ok")))
            .await
            .unwrap()
            .into_inner();
        let planned = decode_dynamic_value(
            resp.planned_state.as_ref(),
            &thing_schema().value_type(),
            "t",
        )
        .unwrap();
        assert!(planned.get_attr("id").unwrap().is_unknown());
        assert_eq!(resp.requires_replace.len(), 1);
        assert_eq!(
            AttributePath::from_proto(&resp.requires_replace[0]),
            AttributePath::attribute("name")
        );
        assert_eq!(resp.planned_private, b"planned");
        assert_eq!(resp.diagnostics.len(), 1);
        assert_eq!(
            resp.diagnostics[0].severity,
            i32::from(pb::diagnostic::Severity::Warning)
        );
    }

    #[tokio::test]
    async fn provider_errors_and_panics_become_diagnostics() {
        let svc = service();
        let resp = svc
            .plan_resource_change(Request::new(plan_request("fail")))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.planned_state.is_none());
        assert_eq!(resp.diagnostics[0].summary, "Refused");
        let path = AttributePath::from_proto(resp.diagnostics[0].attribute.as_ref().unwrap());
        assert_eq!(path, AttributePath::attribute("name"));

        let resp = svc
            .plan_resource_change(Request::new(plan_request("panic")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "Provider bug");
        assert!(resp.diagnostics[0].detail.contains("steered into a panic"));
    }

    #[tokio::test]
    async fn unknown_type_names_and_bad_values_are_diagnostics() {
        let svc = service();
        let mut req = plan_request("ok");
        req.type_name = "test_nope".into();
        let resp = svc
            .plan_resource_change(Request::new(req))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "Unknown resource type");

        let mut req = plan_request("ok");
        req.config = Some(pb::DynamicValue {
            msgpack: vec![0x81, 0xa1, b'x', 0xc0],
            json: Vec::new(),
        });
        let resp = svc
            .plan_resource_change(Request::new(req))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "Invalid value from Terraform");
        assert!(
            resp.diagnostics[0].detail.contains("unexpected attribute"),
            "{:?}",
            resp.diagnostics
        );

        let resp = svc
            .read_data_source(Request::new(pb::read_data_source::Request {
                type_name: "test_thing".into(),
                config: dv(&thing("ok")),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "Data source not implemented");
    }

    #[tokio::test]
    async fn failed_apply_reports_the_prior_state() {
        let prior = thing("fail");
        let resp = service()
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_thing".into(),
                prior_state: dv(&prior),
                planned_state: dv(&thing("fail")),
                config: dv(&thing("fail")),
                planned_private: b"p".to_vec(),
                provider_meta: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.new_state, dv(&prior));
        assert_eq!(resp.private, b"p");
        assert_eq!(resp.diagnostics[0].summary, "Refused");
    }

    #[tokio::test]
    async fn apply_and_read_round_trip_values() {
        let svc = service();
        let resp = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_thing".into(),
                planned_state: dv(&thing("ok")),
                config: dv(&thing("ok")),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.diagnostics.is_empty());
        let state =
            decode_dynamic_value(resp.new_state.as_ref(), &thing_schema().value_type(), "t")
                .unwrap();
        assert_eq!(state.get_attr("id"), Some(&Value::from("id-1")));

        let read = svc
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "test_thing".into(),
                current_state: resp.new_state.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.new_state, resp.new_state);
        assert_eq!(read.private, b"read");
    }

    #[tokio::test]
    async fn upgrade_decodes_json_state_with_the_current_schema() {
        let resp = service()
            .upgrade_resource_state(Request::new(pb::upgrade_resource_state::Request {
                type_name: "test_thing".into(),
                version: 1,
                raw_state: Some(pb::RawState {
                    json: br#"{"name":"n","id":"i","dropped":true}"#.to_vec(),
                    flatmap: std::collections::HashMap::new(),
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        let state = decode_dynamic_value(
            resp.upgraded_state.as_ref(),
            &thing_schema().value_type(),
            "t",
        )
        .unwrap();
        assert_eq!(
            state,
            Value::object([("name", Value::from("n")), ("id", Value::from("i"))])
        );
    }

    #[tokio::test]
    async fn import_defaults_to_unsupported() {
        let resp = service()
            .import_resource_state(Request::new(pb::import_resource_state::Request {
                type_name: "test_thing".into(),
                id: "x".into(),
                client_capabilities: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.imported_resources.is_empty());
        assert_eq!(resp.diagnostics[0].summary, "Import not supported");
    }
}
