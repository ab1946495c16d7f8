//! French wording and formats of the UI: states, steps, actions, dates and amounts.

use seing_engine::circuit::StepAction;
use seing_engine::metadata::MetaValue;
use seing_engine::workflow::{DossierState, RejectionOrigin};
use time::OffsetDateTime;

/// A dossier state, in French.
pub fn state(state: DossierState) -> &'static str {
    match state {
        DossierState::Draft => "Brouillon",
        DossierState::Pending => "En cours",
        DossierState::Rejected => "Rejeté",
        DossierState::Finished => "Terminé",
        DossierState::Transmitted => "Transmis",
        DossierState::Acknowledged => "Acquitté",
        DossierState::Archived => "Archivé",
    }
}

/// A metadata value as a person reads and types it (text unquoted, « oui » / « non »).
pub fn meta_value(value: &MetaValue) -> String {
    match value {
        MetaValue::Text(text) => text.clone(),
        MetaValue::Bool(true) => "oui".to_owned(),
        MetaValue::Bool(false) => "non".to_owned(),
        other => other.to_string(),
    }
}

/// Who rejected or refused a dossier, in French.
pub fn rejection_origin(origin: RejectionOrigin) -> &'static str {
    match origin {
        RejectionOrigin::Desk => "un bureau du circuit",
        RejectionOrigin::Prefecture => "la préfecture",
        RejectionOrigin::Dgfip => "la DGFiP (Hélios)",
        RejectionOrigin::Archive => "le service d'archives",
        RejectionOrigin::Recipient => "le destinataire (lien expiré sans ouverture)",
    }
}

/// A step action, in French.
pub fn step(action: StepAction) -> &'static str {
    match action {
        StepAction::Visa => "Visa",
        StepAction::Signature => "Signature",
        StepAction::Seal => "Cachet serveur",
        StepAction::Notification => "Notification",
        StepAction::Transmission => "Transmission",
        StepAction::Archive => "Archivage",
    }
}

/// A journal action, in French (unknown ones as they are).
pub fn journal_action(action: &str) -> String {
    match action {
        "create" => "Création",
        "submit" => "Envoi dans le circuit",
        "visa" => "Visa",
        "sign" => "Signature",
        "seal" => "Cachet serveur",
        "reject" => "Rejet",
        "undo" => "Droit de remords",
        "transfer" => "Transfert",
        "bypass" => "Passage forcé",
        "annotate" => "Annotation",
        "opinion.ask" => "Demande d'avis",
        "opinion.answer" => "Avis donné",
        "update" => "Modification",
        "recycle" => "Remise en circuit",
        "transmitted" => "Transmis",
        "acknowledged" => "Acquitté",
        "archived" => "Archivé",
        "refused" => "Refusé",
        "expired" => "Lien expiré",
        "transmission.numbered" => "Numéro de transaction S²LOW saisi",
        "transmission.cancelled" => "Annulation accusée par la préfecture",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A date as `29/11/2026`.
pub fn date(at: OffsetDateTime) -> String {
    format!("{:02}/{:02}/{}", at.day(), u8::from(at.month()), at.year())
}

/// A date and time as `29/11/2026 17:20` (UTC).
pub fn date_time(at: OffsetDateTime) -> String {
    format!("{} {:02}:{:02}", date(at), at.hour(), at.minute())
}

/// A date as the `YYYY-MM-DD` of forms and filters.
pub fn iso_date(at: OffsetDateTime) -> String {
    format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
}

/// A decimal amount as written in a PES (`12500.5`) in cents; `None` if it is not one.
pub fn cents(amount: &str) -> Option<i64> {
    let amount = amount.trim();
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (units, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if units.is_empty()
        || fraction.len() > 2
        || !units
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let value = units.checked_mul(100)?.checked_add(fraction)?;
    Some(if negative { -value } else { value })
}

/// Cents as a French amount: `12 500,00 €` (narrow no-break space between thousands).
pub fn euros(cents: i64) -> String {
    let units = (cents / 100).unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{grouped},{:02}\u{a0}€", (cents % 100).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_cents_and_print_in_french() {
        assert_eq!(cents("12500.00"), Some(1_250_000));
        assert_eq!(cents("12500.5"), Some(1_250_050));
        assert_eq!(cents("7"), Some(700));
        assert_eq!(cents("-3.10"), Some(-310));
        assert_eq!(cents("1.234"), None);
        assert_eq!(cents("abc"), None);
        assert_eq!(cents(""), None);
        assert_eq!(euros(1_250_000), "12\u{202f}500,00\u{a0}€");
        assert_eq!(euros(123_456_789), "1\u{202f}234\u{202f}567,89\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(-310), "-3,10\u{a0}€");
    }
}
