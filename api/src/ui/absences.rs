//! Absences: the delegations of the tenant, and the form that declares one (absent desk,
//! replacing desk, dates, optionally one circuit).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use seing_engine::ids::{CircuitId, DeskId};
use serde::Deserialize;
use time::{Date, OffsetDateTime, Time};

use super::dossier::DeskOption;
use super::{Chrome, Person, Posted, UiResult, format, render, see_other};
use crate::http::ApiState;
use crate::http::problem::ApiError;

/// A delegation as listed.
#[derive(Debug, Clone)]
pub struct DelegationRow {
    /// The absent desk.
    pub from: String,
    /// The desk acting for it.
    pub to: String,
    /// First day.
    pub starts: String,
    /// End.
    pub ends: String,
    /// Circuits covered.
    pub circuits: String,
    /// In force now.
    pub active: bool,
}

/// The absences page.
#[derive(Template)]
#[template(path = "absences.html")]
struct AbsencesPage {
    chrome: Chrome,
    rows: Vec<DelegationRow>,
    own: Vec<DeskOption>,
    desks: Vec<DeskOption>,
    circuits: Vec<DeskOption>,
    today: String,
}

/// `GET /absences`.
pub async fn page(State(state): State<Arc<ApiState>>, person: Person) -> UiResult<Response> {
    let directory = person.directory(&state).await?;
    let chrome = person.chrome(&state, &directory, "absences").await?;
    let circuits = state.engine.circuits(person.actor).await?;
    let circuit_name = |id: &CircuitId| {
        circuits
            .iter()
            .find(|c| c.id == *id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let now = OffsetDateTime::now_utc();
    let rows = state
        .engine
        .delegations(person.actor)
        .await?
        .iter()
        .map(|d| DelegationRow {
            from: directory.desk_name(d.from),
            to: directory.desk_name(d.to),
            starts: format::date_time(d.starts_at),
            ends: format::date_time(d.ends_at),
            circuits: if d.circuits.is_empty() {
                "Tous".to_owned()
            } else {
                d.circuits
                    .iter()
                    .map(circuit_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            active: d.starts_at <= now && now < d.ends_at,
        })
        .collect();
    let option = |d: &seing_engine::model::Desk| DeskOption {
        id: d.id.to_string(),
        name: d.name.clone(),
    };
    let page = AbsencesPage {
        chrome,
        rows,
        own: directory
            .desks
            .iter()
            .filter(|d| person.admin || d.holders.contains(&person.actor.user))
            .map(option)
            .collect(),
        desks: directory.desks.iter().map(option).collect(),
        circuits: circuits
            .iter()
            .map(|c| DeskOption {
                id: c.id.to_string(),
                name: c.name.clone(),
            })
            .collect(),
        today: format::iso_date(now),
    };
    render(&page)
}

/// The delegation form.
#[derive(Debug, Deserialize)]
pub struct DelegationForm {
    from: String,
    to: String,
    starts: String,
    ends: String,
    circuit: Option<String>,
}

fn day(field: &str, text: &str) -> Result<Date, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format)
        .map_err(|_| ApiError::invalid(field, "date attendue au format AAAA-MM-JJ"))
}

fn desk(field: &str, text: &str) -> Result<DeskId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(field, "choisissez un bureau"))
}

/// `POST /absences`: from the first day at 00:00 to the end of the last day (UTC).
pub async fn create(
    State(state): State<Arc<ApiState>>,
    posted: Posted<DelegationForm>,
) -> UiResult<Response> {
    let form = posted.form;
    let starts = day("starts", &form.starts)?
        .with_time(Time::MIDNIGHT)
        .assume_utc();
    let ends = day("ends", &form.ends)?
        .next_day()
        .ok_or_else(|| ApiError::invalid("ends", "date hors limites"))?
        .with_time(Time::MIDNIGHT)
        .assume_utc();
    let circuits = match form.circuit.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(c) => vec![
            c.parse::<CircuitId>()
                .map_err(|_| ApiError::invalid("circuit", "circuit inconnu"))?,
        ],
    };
    state
        .engine
        .create_delegation(
            posted.person.actor,
            desk("from", &form.from)?,
            desk("to", &form.to)?,
            starts,
            ends,
            circuits,
        )
        .await?;
    Ok(see_other("/absences"))
}
