//! The trait a provider implements, and the requests and responses of its
//! operations. Values arrive decoded with the schema of the resource type
//! concerned and are encoded back the same way by the server.
//!
//! Errors are [`Diagnostics`]: return `Err(diagnostics)` to fail an operation
//! (the server turns it into a normal Terraform error, never a gRPC error),
//! or put warnings into the response's `diagnostics` to succeed with them.

use std::future::Future;

use crate::diag::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::schema::ProviderSchema;
use crate::types::Type;
use crate::value::Value;

/// `ConfigureProvider`: the provider block's values.
#[derive(Debug, Clone)]
pub struct ConfigureRequest {
    /// The Terraform CLI version, e.g. `1.11.4`.
    pub terraform_version: String,
    /// The provider configuration (may contain unknowns during plan).
    pub config: Value,
}

/// `ValidateResourceConfig` / `ValidateDataResourceConfig`.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    /// The resource or data source type.
    pub type_name: String,
    /// The configuration; may contain unknowns.
    pub config: Value,
}

/// `UpgradeResourceState`: state as stored, possibly by an older schema version.
#[derive(Debug, Clone)]
pub struct UpgradeStateRequest {
    /// The resource type.
    pub type_name: String,
    /// The schema version that wrote the state.
    pub version: i64,
    /// The stored state as JSON (empty if the state is in the legacy flatmap format).
    pub raw_json: Vec<u8>,
    /// The type of the current schema.
    pub current_type: Type,
}

impl UpgradeStateRequest {
    /// Decodes the stored JSON with the current schema's type: attributes the
    /// schema no longer has are dropped, new ones are null.
    pub fn decode_with_current_schema(&self) -> Result<Value, Diagnostics> {
        if self.raw_json.is_empty() {
            return Err(Diagnostic::error(
                "Unsupported state format",
                "the stored state has no JSON form (legacy flatmap state is not supported)",
            )
            .into());
        }
        crate::json::decode(&self.raw_json, &self.current_type).map_err(|e| {
            Diagnostic::error(
                "Unable to read stored state",
                format!(
                    "the stored state of {} does not match its schema: {e}",
                    self.type_name
                ),
            )
            .into()
        })
    }
}

/// The result of [`Provider::upgrade_resource_state`].
#[derive(Debug, Clone)]
pub struct UpgradeStateResponse {
    /// The state in the current schema.
    pub state: Value,
    /// Warnings.
    pub diagnostics: Diagnostics,
}

/// `ReadResource`: refresh a managed resource from the real world.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// The resource type.
    pub type_name: String,
    /// The state Terraform has.
    pub current_state: Value,
    /// The provider's private data stored with the state.
    pub private: Vec<u8>,
}

/// The result of [`Provider::read_resource`].
#[derive(Debug, Clone)]
pub struct ReadResponse {
    /// The current state; [`Value::Null`] if the object no longer exists.
    pub new_state: Value,
    /// Private data to store.
    pub private: Vec<u8>,
    /// Warnings.
    pub diagnostics: Diagnostics,
}

/// `PlanResourceChange`.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The resource type.
    pub type_name: String,
    /// The state before the change; null when creating.
    pub prior_state: Value,
    /// Terraform's proposal: configuration merged with prior computed
    /// values; null when destroying.
    pub proposed_new_state: Value,
    /// The configuration; null when destroying.
    pub config: Value,
    /// Private data from the prior state.
    pub prior_private: Vec<u8>,
}

impl PlanRequest {
    /// Whether this plans the creation of a new object.
    pub fn is_create(&self) -> bool {
        self.prior_state.is_null() && !self.proposed_new_state.is_null()
    }

    /// Whether this plans the destruction of the object.
    pub fn is_destroy(&self) -> bool {
        self.proposed_new_state.is_null()
    }

    /// Whether an update changes the value at `path` (an unknown proposal
    /// counts as a change). Always `false` on create and destroy, so it can
    /// decide `requires_replace` directly.
    pub fn changes(&self, path: &AttributePath) -> bool {
        if self.prior_state.is_null() || self.proposed_new_state.is_null() {
            return false;
        }
        self.prior_state.get(path) != self.proposed_new_state.get(path)
    }

    /// The subset of `paths` whose values this update changes: the usual
    /// `requires_replace` for attributes that force replacement.
    pub fn changed_paths(&self, paths: &[AttributePath]) -> Vec<AttributePath> {
        paths.iter().filter(|p| self.changes(p)).cloned().collect()
    }
}

/// The result of [`Provider::plan_resource_change`].
#[derive(Debug, Clone)]
pub struct PlanResponse {
    /// The planned state: unknowns where values are decided during apply.
    pub planned_state: Value,
    /// Attributes whose change forces replacement of the object.
    pub requires_replace: Vec<AttributePath>,
    /// Private data passed to apply.
    pub planned_private: Vec<u8>,
    /// Warnings (shown in the plan).
    pub diagnostics: Diagnostics,
}

impl PlanResponse {
    /// A plan of `planned_state` with no replacement, private data or warnings.
    pub fn new(planned_state: Value) -> PlanResponse {
        PlanResponse {
            planned_state,
            requires_replace: Vec::new(),
            planned_private: Vec::new(),
            diagnostics: Diagnostics::new(),
        }
    }
}

/// `ApplyResourceChange`.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The resource type.
    pub type_name: String,
    /// The state before the change; null when creating.
    pub prior_state: Value,
    /// The planned state; null when destroying.
    pub planned_state: Value,
    /// The configuration, now wholly known; null when destroying.
    pub config: Value,
    /// Private data from the plan.
    pub planned_private: Vec<u8>,
}

impl ApplyRequest {
    /// Whether this creates a new object.
    pub fn is_create(&self) -> bool {
        self.prior_state.is_null() && !self.planned_state.is_null()
    }

    /// Whether this destroys the object.
    pub fn is_destroy(&self) -> bool {
        self.planned_state.is_null()
    }
}

/// The result of [`Provider::apply_resource_change`].
#[derive(Debug, Clone)]
pub struct ApplyResponse {
    /// The new state: wholly known and consistent with the plan; null after destroy.
    pub new_state: Value,
    /// Private data to store.
    pub private: Vec<u8>,
    /// Warnings.
    pub diagnostics: Diagnostics,
}

/// `ImportResourceState`.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The resource type.
    pub type_name: String,
    /// The user-given import id.
    pub id: String,
}

/// One object found by an import.
#[derive(Debug, Clone)]
pub struct ImportedResource {
    /// Its resource type.
    pub type_name: String,
    /// Its (possibly partial) state; Terraform reads it right after.
    pub state: Value,
    /// Private data to store.
    pub private: Vec<u8>,
}

/// The result of [`Provider::import_resource_state`].
#[derive(Debug, Clone)]
pub struct ImportResponse {
    /// The imported objects.
    pub imported: Vec<ImportedResource>,
    /// Warnings.
    pub diagnostics: Diagnostics,
}

/// `ReadDataSource`.
#[derive(Debug, Clone)]
pub struct ReadDataRequest {
    /// The data source type.
    pub type_name: String,
    /// The configuration (wholly known).
    pub config: Value,
}

/// The result of [`Provider::read_data_source`].
#[derive(Debug, Clone)]
pub struct ReadDataResponse {
    /// The data source's full value.
    pub state: Value,
    /// Warnings.
    pub diagnostics: Diagnostics,
}

/// A Terraform provider.
///
/// Methods take `&self` and may run concurrently (Terraform calls in
/// parallel); keep configuration set by [`Provider::configure`] behind a lock
/// or a `OnceLock`. Type names are checked against [`Provider::schema`]
/// before a method is called.
pub trait Provider: Send + Sync + 'static {
    /// The provider's schemas; called once when the server starts.
    fn schema(&self) -> ProviderSchema;

    /// Validates the provider block (values may be unknown).
    fn validate_provider_config(&self, config: Value) -> impl Future<Output = Diagnostics> + Send {
        let _ = config;
        async { Diagnostics::new() }
    }

    /// Configures the provider; called before any operation that needs it.
    fn configure(&self, request: ConfigureRequest) -> impl Future<Output = Diagnostics> + Send;

    /// Validates a resource's configuration (values may be unknown).
    fn validate_resource_config(
        &self,
        request: ValidateRequest,
    ) -> impl Future<Output = Diagnostics> + Send {
        let _ = request;
        async { Diagnostics::new() }
    }

    /// Validates a data source's configuration (values may be unknown).
    fn validate_data_source_config(
        &self,
        request: ValidateRequest,
    ) -> impl Future<Output = Diagnostics> + Send {
        let _ = request;
        async { Diagnostics::new() }
    }

    /// Upgrades stored state to the current schema. The default decodes the
    /// JSON with the current schema, which is right while the schema version
    /// has never changed.
    fn upgrade_resource_state(
        &self,
        request: UpgradeStateRequest,
    ) -> impl Future<Output = Result<UpgradeStateResponse, Diagnostics>> + Send {
        async move {
            Ok(UpgradeStateResponse {
                state: request.decode_with_current_schema()?,
                diagnostics: Diagnostics::new(),
            })
        }
    }

    /// Refreshes a managed resource.
    fn read_resource(
        &self,
        request: ReadRequest,
    ) -> impl Future<Output = Result<ReadResponse, Diagnostics>> + Send;

    /// Plans a create, update or destroy.
    fn plan_resource_change(
        &self,
        request: PlanRequest,
    ) -> impl Future<Output = Result<PlanResponse, Diagnostics>> + Send;

    /// Carries out a planned change. On `Err`, Terraform keeps the prior state.
    fn apply_resource_change(
        &self,
        request: ApplyRequest,
    ) -> impl Future<Output = Result<ApplyResponse, Diagnostics>> + Send;

    /// Imports an existing object. The default refuses.
    fn import_resource_state(
        &self,
        request: ImportRequest,
    ) -> impl Future<Output = Result<ImportResponse, Diagnostics>> + Send {
        async move {
            Err(Diagnostic::error(
                "Import not supported",
                format!("resource type {} cannot be imported", request.type_name),
            )
            .into())
        }
    }

    /// Reads a data source.
    fn read_data_source(
        &self,
        request: ReadDataRequest,
    ) -> impl Future<Output = Result<ReadDataResponse, Diagnostics>> + Send {
        async move {
            Err(Diagnostic::error(
                "Data source not implemented",
                format!("data source {} is not implemented", request.type_name),
            )
            .into())
        }
    }

    /// Asks the provider to stop work in progress (the user pressed Ctrl-C).
    /// Returns an error message if it could not.
    fn stop(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prior: Value, proposed: Value) -> PlanRequest {
        PlanRequest {
            type_name: "t".into(),
            config: proposed.clone(),
            prior_state: prior,
            proposed_new_state: proposed,
            prior_private: Vec::new(),
        }
    }

    fn obj(name: &str, path: Value) -> Value {
        Value::object([("name", Value::from(name)), ("path", path)])
    }

    #[test]
    fn changed_paths_only_on_update() {
        let name = AttributePath::attribute("name");
        let path = AttributePath::attribute("path");
        let update = request(obj("a", Value::from("/x")), obj("b", Value::from("/x")));
        assert!(!update.is_create() && !update.is_destroy());
        assert_eq!(
            update.changed_paths(&[name.clone(), path.clone()]),
            vec![name.clone()]
        );

        let unknown = request(obj("a", Value::from("/x")), obj("a", Value::unknown()));
        assert_eq!(
            unknown.changed_paths(&[name.clone(), path.clone()]),
            vec![path.clone()]
        );

        let create = request(Value::Null, obj("a", Value::Null));
        assert!(create.is_create());
        assert!(
            create
                .changed_paths(&[name.clone(), path.clone()])
                .is_empty()
        );

        let destroy = request(obj("a", Value::Null), Value::Null);
        assert!(destroy.is_destroy());
        assert!(!destroy.changes(&name));
    }

    #[tokio::test]
    async fn default_upgrade_decodes_current_schema_and_rejects_flatmap() {
        struct Nothing;
        impl Provider for Nothing {
            fn schema(&self) -> ProviderSchema {
                ProviderSchema::default()
            }
            async fn configure(&self, _: ConfigureRequest) -> Diagnostics {
                Diagnostics::new()
            }
            async fn read_resource(&self, _: ReadRequest) -> Result<ReadResponse, Diagnostics> {
                Err(Diagnostics::new())
            }
            async fn plan_resource_change(
                &self,
                _: PlanRequest,
            ) -> Result<PlanResponse, Diagnostics> {
                Err(Diagnostics::new())
            }
            async fn apply_resource_change(
                &self,
                _: ApplyRequest,
            ) -> Result<ApplyResponse, Diagnostics> {
                Err(Diagnostics::new())
            }
        }
        let ty = Type::object([("name", Type::String)]);
        let ok = Nothing
            .upgrade_resource_state(UpgradeStateRequest {
                type_name: "t".into(),
                version: 0,
                raw_json: br#"{"name":"n"}"#.to_vec(),
                current_type: ty.clone(),
            })
            .await
            .unwrap();
        assert_eq!(ok.state, Value::object([("name", Value::from("n"))]));
        let flatmap = Nothing
            .upgrade_resource_state(UpgradeStateRequest {
                type_name: "t".into(),
                version: 0,
                raw_json: Vec::new(),
                current_type: ty,
            })
            .await
            .unwrap_err();
        assert!(flatmap.has_errors());
    }
}
