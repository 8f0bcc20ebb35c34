//! Request and answer types of the methods this crate knows.
//!
//! Requests serialise only the keys that are set (`skip_serializing_if`), because spdk_tgt
//! rejects unknown keys and a newer key would break an older target. Answers are parsed
//! tolerantly: unknown fields are ignored and most fields default when absent, so a newer
//! spdk_tgt that adds fields still parses. Answers are always decoded from a
//! `serde_json::Value` (see [`crate::framing`]), which accepts the duplicate `uuid` key that
//! `bdev_raid_get_bdevs` sends in every object.

pub mod bdev;
pub mod lvol;
pub mod nvme;
pub mod nvmf;
pub mod raid;
pub mod system;

/// A string-valued enum with known variants and a catch-all, parsed tolerantly.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, kept as received.
            Other(String),
        }

        impl $name {
            /// The text SPDK uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }

            /// Parses SPDK's text (known aliases included); unknown text becomes `Other`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text $(| $alias)* => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&text))
            }
        }
    };
}
pub(crate) use string_enum;

#[cfg(test)]
mod tests {
    string_enum! {
        /// Test enum.
        pub enum Colour {
            /// Red.
            Red = "red" | "r",
            /// Blue.
            Blue = "blue",
        }
    }

    #[test]
    fn string_enum_parses_aliases_and_keeps_unknown_values() {
        assert_eq!(Colour::parse("r"), Colour::Red);
        assert_eq!(Colour::parse("blue"), Colour::Blue);
        assert_eq!(Colour::parse("green"), Colour::Other("green".into()));
        let v: Colour = serde_json::from_str("\"green\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"green\"");
        assert_eq!(serde_json::to_string(&Colour::Red).unwrap(), "\"red\"");
    }
}
