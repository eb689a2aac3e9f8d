//! [`StringOr`]: a config value written as a string or as a table.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A value written either as a string (`backend = "memory"`) or as a table
/// (`backend = { redis = "redis://..." }`). Unlike a serde untagged enum, the table's own
/// errors reach the user: an unknown key is "unknown field `timout`, expected one of ...", not
/// "data did not match any variant".
///
/// ```
/// use tower_plugins_core::StringOr;
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Redis { redis: String }
/// #[derive(serde::Deserialize)]
/// struct C { backend: StringOr<Redis> }
/// let c: C = toml::from_str("backend = \"memory\"").unwrap();
/// assert!(matches!(c.backend, StringOr::String(s) if s == "memory"));
/// let e = toml::from_str::<C>("backend = { redis = \"x\", prefx = \"p\" }").err().unwrap();
/// assert!(e.message().contains("unknown field `prefx`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringOr<T> {
    /// Written as a string.
    String(String),
    /// Written as a table.
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StringOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Either<T> {
            type Value = StringOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOr::String(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(StringOr::Table)
            }
        }
        d.deserialize_any(Either(PhantomData))
    }
}
