//! The configured provider is a `client::ops::Session`: the fleet, one observation of it
//! per run, and the records planned so far. This module maps its errors and warnings to
//! Terraform diagnostics.

use client::ops::{OpsError, Warning};
use tfplugin::{Diagnostic, Diagnostics};

use crate::convert::parse_path;

pub use client::ops::Session as Context;

/// An operation error as diagnostics; attribute errors carry their path.
pub fn ops_diag(summary: &str, e: OpsError) -> Diagnostics {
    match e {
        OpsError::Invalid { attribute, reason } => {
            Diagnostic::error(format!("Invalid {attribute}"), reason)
                .with_attribute(parse_path(&attribute))
                .into()
        }
        OpsError::Nodes(errs) => errs
            .into_iter()
            .map(|(node, msg)| Diagnostic::error(format!("{summary} on node {node}"), msg))
            .collect(),
        other => Diagnostic::error(summary, other.to_string()).into(),
    }
}

/// Warnings as diagnostics.
pub fn warning_diags(ws: &[Warning]) -> Diagnostics {
    ws.iter()
        .map(|w| Diagnostic::warning(w.summary.clone(), w.detail.clone()))
        .collect()
}
