//! Typed dossier metadata and the conditions on it that add or skip circuit steps.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number (amounts in cents, counts).
    Integer(i64),
    /// A decimal number (amounts in euros).
    Number(f64),
    /// Free text.
    Text(String),
}

impl MetaValue {
    fn as_number(&self) -> Option<f64> {
        match self {
            // Precision loss above 2^53 is irrelevant for amounts compared to a threshold.
            Self::Integer(i) => Some(*i as f64),
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => b.fmt(f),
            Self::Integer(i) => i.fmt(f),
            Self::Number(n) => n.fmt(f),
            Self::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// Metadata of a dossier: a name → value map, ordered so that it serializes deterministically.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A comparison operator of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Operator {
    fn symbol(self) -> &'static str {
        match self {
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Equal => "==",
            Self::NotEqual => "!=",
        }
    }
}

/// A condition on metadata such as `amount > 1500`; a step with a condition exists only when
/// the condition holds at submission. A missing field makes the condition false.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The metadata field compared.
    pub field: String,
    /// The comparison.
    pub operator: Operator,
    /// The constant compared with.
    pub value: MetaValue,
}

impl Condition {
    /// Evaluates the condition against `metadata`.
    pub fn holds(&self, metadata: &Metadata) -> bool {
        let Some(actual) = metadata.get(&self.field) else {
            return false;
        };
        let ordering = match (actual.as_number(), self.value.as_number()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => match (actual, &self.value) {
                (MetaValue::Text(a), MetaValue::Text(b)) => Some(a.cmp(b)),
                (MetaValue::Bool(a), MetaValue::Bool(b)) => Some(a.cmp(b)),
                _ => None,
            },
        };
        let Some(ordering) = ordering else {
            return self.operator == Operator::NotEqual;
        };
        match self.operator {
            Operator::Greater => ordering.is_gt(),
            Operator::GreaterOrEqual => ordering.is_ge(),
            Operator::Less => ordering.is_lt(),
            Operator::LessOrEqual => ordering.is_le(),
            Operator::Equal => ordering.is_eq(),
            Operator::NotEqual => ordering.is_ne(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.field,
            self.operator.symbol(),
            self.value
        )
    }
}

impl FromStr for Condition {
    type Err = String;

    /// Parses `field OP value` where OP is one of `> >= < <= == !=` and value is a number,
    /// `true`/`false` or a double-quoted string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let operators = [
            (">=", Operator::GreaterOrEqual),
            ("<=", Operator::LessOrEqual),
            ("==", Operator::Equal),
            ("!=", Operator::NotEqual),
            (">", Operator::Greater),
            ("<", Operator::Less),
        ];
        let (position, symbol, operator) = operators
            .iter()
            .filter_map(|(symbol, op)| s.find(symbol).map(|p| (p, *symbol, *op)))
            .min_by_key(|(p, symbol, _)| (*p, std::cmp::Reverse(symbol.len())))
            .ok_or_else(|| format!("`{s}` has no operator (> >= < <= == !=)"))?;
        let field = s[..position].trim();
        let raw = s[position + symbol.len()..].trim();
        if field.is_empty() || !field.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("`{s}`: `{field}` is not a metadata field name"));
        }
        let value = if let Ok(i) = raw.parse::<i64>() {
            MetaValue::Integer(i)
        } else if let Ok(n) = raw.parse::<f64>() {
            MetaValue::Number(n)
        } else if raw == "true" || raw == "false" {
            MetaValue::Bool(raw == "true")
        } else if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            MetaValue::Text(raw[1..raw.len() - 1].to_owned())
        } else {
            return Err(format!(
                "`{s}`: `{raw}` is neither a number, a boolean nor a \"quoted string\""
            ));
        };
        Ok(Self {
            field: field.to_owned(),
            operator,
            value,
        })
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_evaluate() {
        let c: Condition = "amount > 1500".parse().unwrap();
        let mut m = Metadata::new();
        assert!(!c.holds(&m), "missing field is false");
        m.insert("amount".into(), MetaValue::Number(1500.0));
        assert!(!c.holds(&m));
        m.insert("amount".into(), MetaValue::Integer(1501));
        assert!(c.holds(&m));
        let ge: Condition = "amount >= 1500".parse().unwrap();
        assert_eq!(ge.operator, Operator::GreaterOrEqual);
        let t: Condition = "kind == \"urgent\"".parse().unwrap();
        m.insert("kind".into(), MetaValue::Text("urgent".into()));
        assert!(t.holds(&m));
        assert_eq!(t.to_string().parse::<Condition>().unwrap(), t);
        assert!("amount 1500".parse::<Condition>().is_err());
        assert!("> 3".parse::<Condition>().is_err());
        assert!("a > b".parse::<Condition>().is_err());
    }
}
