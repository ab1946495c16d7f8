//! The nature of an act, as @ctes codes it.

use std::fmt;
use std::str::FromStr;

/// The nature of an act (`CodeNatureActe`), with its two-letter abbreviation used in file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatureActe {
    /// 1 — délibération (`DE`).
    Deliberation,
    /// 2 — acte réglementaire (`AR`).
    ActeReglementaire,
    /// 3 — acte individuel (`AI`).
    ActeIndividuel,
    /// 4 — contrat, convention, avenant (`CC`).
    Contrat,
    /// 5 — document budgétaire et financier (`BF`).
    DocumentBudgetaire,
    /// 6 — autre (`AU`).
    Autre,
}

impl NatureActe {
    /// All natures, by code.
    pub const ALL: [NatureActe; 6] = [
        Self::Deliberation,
        Self::ActeReglementaire,
        Self::ActeIndividuel,
        Self::Contrat,
        Self::DocumentBudgetaire,
        Self::Autre,
    ];

    /// The numeric `CodeNatureActe`.
    pub fn code(self) -> u8 {
        match self {
            Self::Deliberation => 1,
            Self::ActeReglementaire => 2,
            Self::ActeIndividuel => 3,
            Self::Contrat => 4,
            Self::DocumentBudgetaire => 5,
            Self::Autre => 6,
        }
    }

    /// The two-letter abbreviation used in identifiers and file names.
    pub fn abbreviation(self) -> &'static str {
        match self {
            Self::Deliberation => "DE",
            Self::ActeReglementaire => "AR",
            Self::ActeIndividuel => "AI",
            Self::Contrat => "CC",
            Self::DocumentBudgetaire => "BF",
            Self::Autre => "AU",
        }
    }

    /// The generic document type of this nature (`99_..` in the @ctes classification), used for
    /// the act and its annexes when the dossier names no more precise type.
    pub fn generic_type_pj(self) -> &'static str {
        match self {
            Self::Deliberation => "99_DE",
            Self::ActeReglementaire => "99_AR",
            Self::ActeIndividuel => "99_AI",
            Self::Contrat => "99_DC",
            Self::DocumentBudgetaire => "99_BU",
            Self::Autre => "99_AU",
        }
    }

    /// The nature with this numeric code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.code() == code)
    }
}

impl FromStr for NatureActe {
    type Err = String;

    /// Accepts the code (`"1"`) or the abbreviation (`"DE"`, any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        s.parse::<u8>()
            .ok()
            .and_then(Self::from_code)
            .or_else(|| {
                Self::ALL
                    .into_iter()
                    .find(|n| n.abbreviation().eq_ignore_ascii_case(s))
            })
            .ok_or_else(|| {
                format!("« {s} » n'est pas une nature d'acte (1 à 6 ou DE, AR, AI, CC, BF, AU)")
            })
    }
}

impl fmt::Display for NatureActe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_abbreviation_both_parse() {
        assert_eq!("1".parse(), Ok(NatureActe::Deliberation));
        assert_eq!("ai".parse(), Ok(NatureActe::ActeIndividuel));
        assert_eq!(
            NatureActe::from_code(5),
            Some(NatureActe::DocumentBudgetaire)
        );
        assert!("7".parse::<NatureActe>().is_err());
        assert!("XX".parse::<NatureActe>().is_err());
    }
}
