//! One broken rule in the input, named by the field it concerns.

use std::fmt;

/// One problem found while validating input: the field (or file) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The metadata field or file name concerned, e.g. `numero_interne`.
    pub field: String,
    /// What is wrong, in French (shown to operators as is).
    pub message: String,
}

impl Problem {
    /// A problem on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// All problems on one line, separated by ` ; `.
    pub fn join(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ; ")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} : {}", self.field, self.message)
    }
}
