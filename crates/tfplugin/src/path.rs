//! Attribute paths: where in a value a diagnostic or a replacement applies.

use crate::proto::tfplugin6 as pb;

/// One step of an [`AttributePath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An attribute (or nested block type) of an object.
    Attribute(String),
    /// An element of a map (or a map-nested block), by key.
    ElementKeyString(String),
    /// An element of a list or tuple, by index.
    ElementKeyInt(i64),
}

/// A path from the root of a resource's value to one of its parts, e.g.
/// `disks[0].tags["zone"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AttributePath {
    steps: Vec<PathStep>,
}

impl AttributePath {
    /// The empty path (the whole value).
    pub fn root() -> AttributePath {
        AttributePath::default()
    }

    /// A path of a single top-level attribute.
    pub fn attribute(name: impl Into<String>) -> AttributePath {
        AttributePath::root().attr(name)
    }

    /// This path followed by an attribute step.
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>) -> AttributePath {
        self.steps.push(PathStep::Attribute(name.into()));
        self
    }

    /// This path followed by a list/tuple index step.
    #[must_use]
    pub fn index(mut self, index: i64) -> AttributePath {
        self.steps.push(PathStep::ElementKeyInt(index));
        self
    }

    /// This path followed by a map key step.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> AttributePath {
        self.steps.push(PathStep::ElementKeyString(key.into()));
        self
    }

    /// The steps, from the root.
    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// Converts to the protocol message.
    pub fn to_proto(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .steps
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        PathStep::Attribute(n) => Selector::AttributeName(n.clone()),
                        PathStep::ElementKeyString(k) => Selector::ElementKeyString(k.clone()),
                        PathStep::ElementKeyInt(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }

    /// Converts from the protocol message; steps without a selector are skipped.
    pub fn from_proto(path: &pb::AttributePath) -> AttributePath {
        use pb::attribute_path::step::Selector;
        AttributePath {
            steps: path
                .steps
                .iter()
                .filter_map(|s| {
                    Some(match s.selector.as_ref()? {
                        Selector::AttributeName(n) => PathStep::Attribute(n.clone()),
                        Selector::ElementKeyString(k) => PathStep::ElementKeyString(k.clone()),
                        Selector::ElementKeyInt(i) => PathStep::ElementKeyInt(*i),
                    })
                })
                .collect(),
        }
    }
}

impl FromIterator<PathStep> for AttributePath {
    fn from_iter<T: IntoIterator<Item = PathStep>>(iter: T) -> Self {
        AttributePath {
            steps: iter.into_iter().collect(),
        }
    }
}

impl std::fmt::Display for AttributePath {
    /// Terraform's own notation: `a.b[0]["k"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Attribute(n) if i == 0 => write!(f, "{n}")?,
                PathStep::Attribute(n) => write!(f, ".{n}")?,
                PathStep::ElementKeyString(k) => write!(f, "[{k:?}]")?,
                PathStep::ElementKeyInt(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::attribute_path::{Step, step::Selector};

    #[test]
    fn to_proto_keeps_step_kinds_and_order() {
        let p = AttributePath::attribute("disks")
            .index(2)
            .attr("tags")
            .key("zone");
        let proto = p.to_proto();
        let selectors: Vec<_> = proto
            .steps
            .iter()
            .map(|s| s.selector.clone().unwrap())
            .collect();
        assert_eq!(
            selectors,
            vec![
                Selector::AttributeName("disks".into()),
                Selector::ElementKeyInt(2),
                Selector::AttributeName("tags".into()),
                Selector::ElementKeyString("zone".into()),
            ]
        );
        assert_eq!(AttributePath::from_proto(&proto), p);
    }

    #[test]
    fn from_proto_skips_empty_steps() {
        let proto = pb::AttributePath {
            steps: vec![
                Step { selector: None },
                Step {
                    selector: Some(Selector::AttributeName("a".into())),
                },
            ],
        };
        assert_eq!(
            AttributePath::from_proto(&proto),
            AttributePath::attribute("a")
        );
    }

    #[test]
    fn proto_wire_bytes_match_field_numbers() {
        use prost::Message;
        // steps(1) { attribute_name(1) "a" }, steps(1) { element_key_int(3) 5 }
        let bytes = AttributePath::attribute("a")
            .index(5)
            .to_proto()
            .encode_to_vec();
        assert_eq!(
            bytes,
            vec![0x0a, 0x03, 0x0a, 0x01, b'a', 0x0a, 0x02, 0x18, 0x05]
        );
    }

    #[test]
    fn display_uses_terraform_notation() {
        let p = AttributePath::attribute("disks")
            .index(0)
            .attr("tags")
            .key("zone");
        assert_eq!(p.to_string(), r#"disks[0].tags["zone"]"#);
        assert_eq!(AttributePath::root().to_string(), "");
    }
}
