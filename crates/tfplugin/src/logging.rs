//! Logging for plugin processes: to stderr, which Terraform captures, one
//! line per event starting with `[LEVEL]` so go-plugin's host files each
//! line under the right level in Terraform's own log.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (Terraform's
//! variables, which the plugin inherits), else `info`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Maps a Terraform log level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
/// `JSON`, `OFF`) to a tracing filter directive.
pub fn filter_directive(tf_level: Option<&str>) -> &'static str {
    match tf_level.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE" | "JSON") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR") => "error",
        Some("OFF") => "off",
        _ => "info",
    }
}

/// Installs the stderr logger (does nothing if one is already installed).
pub fn init() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let level = var("TF_LOG_PROVIDER").or_else(|| var("TF_LOG"));
    let filter = tracing_subscriber::EnvFilter::new(filter_directive(level.as_deref()));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .event_format(LevelPrefixed)
        .try_init();
}

/// `[LEVEL] target: message key=value ...`
struct LevelPrefixed;

impl<S, N> FormatEvent<S, N> for LevelPrefixed
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => "INFO",
            Level::WARN => "WARN",
            Level::ERROR => "ERROR",
        };
        write!(writer, "[{level}] {}: ", event.metadata().target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_levels_map_to_filters() {
        assert_eq!(filter_directive(Some("TRACE")), "trace");
        assert_eq!(filter_directive(Some("debug")), "debug");
        assert_eq!(filter_directive(Some("JSON")), "trace");
        assert_eq!(filter_directive(Some("off")), "off");
        assert_eq!(filter_directive(None), "info");
        assert_eq!(filter_directive(Some("bogus")), "info");
    }
}
