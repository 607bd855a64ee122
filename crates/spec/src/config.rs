//! A configuration: one value per parameter of a space, in the space's order.
//!
//! This is what an objective sees and what `tune()` returns. Strategies work on [`Point`]s (value
//! indices) instead; the space converts between the two.
//!
//! [`Point`]: crate::space::Point

use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::Serialize;

use crate::value::Value;

/// Parameter names and values, in the space's parameter order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Config {
    /// A config from parallel name and value lists (same length; the space's order).
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Config {
        assert_eq!(names.len(), values.len(), "a config has one value per parameter");
        Config { names, values }
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.names.iter().position(|n| n == name).map(|i| &self.values[i])
    }

    /// The integer value of parameter `name` (booleans as 0/1).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(String::as_str).zip(self.values.iter())
    }

    /// The config as a JSON object, in parameter order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a config of scalars always serialises")
    }

    /// Kernel Tuner's cache key: the values joined by commas (`"128,4,1"`).
    pub fn key(&self) -> String {
        self.values.iter().map(Value::to_define).collect::<Vec<_>>().join(",")
    }
}

impl std::ops::Index<&str> for Config {
    type Output = Value;

    /// Panics when `name` is not a parameter; use [`Config::get`] for a fallible lookup.
    fn index(&self, name: &str) -> &Value {
        match self.get(name) {
            Some(v) => v,
            None => panic!("`{name}` is not a parameter of this config (parameters: {})", self.names.join(", ")),
        }
    }
}

impl fmt::Display for Config {
    /// Python's dict repr, as the seed printed it: `{'block': 256, 'items': 4}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "'{n}': {v}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Config {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (n, v) in self.iter() {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}
