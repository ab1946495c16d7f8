//! The bureau: a desk's dossiers by tab (À traiter, En cours, Traités, En retard, Rejetés) with
//! counters, filters (circuit, dates, text), a desk switcher (own desks and desks held through
//! an active delegation) and the selection for batch signing. A tab shows [`PAGE_SIZE`]
//! dossiers at a time; the next page starts after a cursor (the last row's change time and id),
//! so a dossier changing meanwhile never shifts a page; counters always count every page.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use seing_engine::bureau::{BureauEntry, BureauTab};
use seing_engine::circuit::StepAction;
use seing_engine::ids::{CircuitId, DeskId, DossierId};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Chrome, Directory, Person, UiResult, format, render};
use crate::http::ApiState;

/// Dossiers per page of a tab.
pub const PAGE_SIZE: usize = 50;

/// A tab of the bureau.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Waiting for the desk.
    ToAct,
    /// Going on elsewhere.
    InProgress,
    /// The desk's part is over.
    Done,
    /// Waiting and past the deadline.
    Late,
    /// Rejected back to the desk.
    Rejected,
}

impl Tab {
    const ALL: [Tab; 5] = [
        Self::ToAct,
        Self::InProgress,
        Self::Done,
        Self::Late,
        Self::Rejected,
    ];

    /// The tab's name in URLs.
    pub fn slug(self) -> &'static str {
        match self {
            Self::ToAct => "a-traiter",
            Self::InProgress => "en-cours",
            Self::Done => "traites",
            Self::Late => "en-retard",
            Self::Rejected => "rejetes",
        }
    }

    /// The tab's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::ToAct => "À traiter",
            Self::InProgress => "En cours",
            Self::Done => "Traités",
            Self::Late => "En retard",
            Self::Rejected => "Rejetés",
        }
    }

    fn parse(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.slug() == slug)
    }

    /// Whether a dossier of the bureau shows under this tab.
    pub fn holds(self, entry: &BureauEntry) -> bool {
        match self {
            Self::ToAct => entry.tab == BureauTab::ToAct,
            Self::InProgress => entry.tab == BureauTab::InProgress,
            Self::Done => entry.tab == BureauTab::Done,
            Self::Late => {
                entry.late && matches!(entry.tab, BureauTab::ToAct | BureauTab::InProgress)
            }
            Self::Rejected => entry.tab == BureauTab::Rejected,
        }
    }
}

/// The query string of the bureau (empty fields are no filter).
#[derive(Debug, Default, Deserialize)]
pub struct BureauQuery {
    /// The desk shown.
    bureau: Option<String>,
    /// The tab.
    onglet: Option<String>,
    /// Only this circuit.
    circuit: Option<String>,
    /// Created on or after (YYYY-MM-DD).
    du: Option<String>,
    /// Created on or before (YYYY-MM-DD).
    au: Option<String>,
    /// Words of the title.
    q: Option<String>,
    /// The page starts after this row (see [`Cursor`]).
    apres: Option<String>,
}

/// Where a page starts: just after the row with this change time and id, in the bureau's order
/// (most recently changed first, then by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The row's last change, in Unix nanoseconds.
    updated: i128,
    /// The row's id.
    id: DossierId,
}

impl Cursor {
    fn of(entry: &BureauEntry) -> Self {
        Self {
            updated: entry.updated_at.unix_timestamp_nanos(),
            id: entry.id,
        }
    }

    /// Whether `entry` comes after the cursor in the bureau's order.
    fn precedes(self, entry: &BureauEntry) -> bool {
        let updated = entry.updated_at.unix_timestamp_nanos();
        updated < self.updated || (updated == self.updated && entry.id > self.id)
    }

    fn text(self) -> String {
        format!("{}.{}", self.updated, self.id)
    }

    fn parse(text: &str) -> Option<Self> {
        let (updated, id) = text.split_once('.')?;
        Some(Self {
            updated: updated.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A desk in the switcher.
#[derive(Debug, Clone)]
pub struct DeskChoice {
    /// Identifier.
    pub id: String,
    /// Name, with « (délégation) » for a desk held through a delegation.
    pub label: String,
    /// The desk shown.
    pub selected: bool,
}

/// A tab link with its counter.
#[derive(Debug, Clone)]
pub struct TabLink {
    /// URL.
    pub href: String,
    /// Label.
    pub label: &'static str,
    /// Dossiers under it (with the filters applied).
    pub count: usize,
    /// The tab shown.
    pub current: bool,
}

/// A circuit in the filter.
#[derive(Debug, Clone)]
pub struct CircuitChoice {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Chosen.
    pub selected: bool,
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct Row {
    /// Identifier.
    pub id: String,
    /// Title.
    pub title: String,
    /// Circuit name.
    pub circuit: String,
    /// Where it stands.
    pub status: String,
    /// Creation date.
    pub created: String,
    /// Deadline, if any.
    pub deadline: String,
    /// Past its deadline.
    pub late: bool,
    /// Waiting for this desk's signature: it can join a batch.
    pub signable: bool,
}

/// The bureau page.
#[derive(Template)]
#[template(path = "bureau.html")]
struct BureauPage {
    chrome: Chrome,
    desks: Vec<DeskChoice>,
    desk: String,
    desk_name: String,
    tabs: Vec<TabLink>,
    tab: &'static str,
    tab_label: &'static str,
    circuits: Vec<CircuitChoice>,
    du: String,
    au: String,
    q: String,
    rows: Vec<Row>,
    signable: usize,
    /// « 51 à 100 sur 1000 » when the tab holds more than one page.
    range: Option<String>,
    /// The first page, when it is neither this page nor the page before.
    first: Option<String>,
    /// The page before, when this is not the first.
    previous: Option<String>,
    /// The next page, if any.
    next: Option<String>,
}

/// The desks the person may open: held ones, then those held through an active delegation.
pub async fn desk_choices(
    state: &ApiState,
    person: &Person,
    directory: &Directory,
) -> UiResult<Vec<(DeskId, String)>> {
    let mut choices: Vec<(DeskId, String)> = directory
        .desks
        .iter()
        .filter(|d| d.holders.contains(&person.actor.user))
        .map(|d| (d.id, d.name.clone()))
        .collect();
    let now = OffsetDateTime::now_utc();
    for delegation in state.engine.delegations(person.actor).await? {
        let mine = choices.iter().any(|(id, _)| *id == delegation.to);
        let active = delegation.starts_at <= now && now < delegation.ends_at;
        if mine && active && !choices.iter().any(|(id, _)| *id == delegation.from) {
            choices.push((
                delegation.from,
                format!("{} (délégation)", directory.desk_name(delegation.from)),
            ));
        }
    }
    Ok(choices)
}

/// `GET /bureau`.
pub async fn page(
    State(state): State<Arc<ApiState>>,
    person: Person,
    Query(query): Query<BureauQuery>,
) -> UiResult<Response> {
    let directory = person.directory(&state).await?;
    let chrome = person.chrome(&state, &directory, "bureau").await?;
    let choices = desk_choices(&state, &person, &directory).await?;
    let desk = match filled(&query.bureau) {
        Some(text) => text.parse::<DeskId>().map_err(|_| super::not_found())?,
        None => match choices.first() {
            Some((id, _)) => *id,
            None => {
                return Err(crate::http::problem::ApiError::Forbidden(
                    "vous ne détenez aucun bureau",
                )
                .into());
            }
        },
    };
    let entries = state.engine.bureau(person.actor, desk).await?;
    let circuits = state.engine.circuits(person.actor).await?;
    let circuit_names: BTreeMap<CircuitId, String> =
        circuits.iter().map(|c| (c.id, c.name.clone())).collect();
    let circuit_filter = filled(&query.circuit).and_then(|c| c.parse::<CircuitId>().ok());
    let du = filled(&query.du).map(str::to_owned);
    let au = filled(&query.au).map(str::to_owned);
    let words: Vec<String> = filled(&query.q)
        .map(|q| {
            q.to_lowercase()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let kept: Vec<&BureauEntry> = entries
        .iter()
        .filter(|e| circuit_filter.is_none_or(|c| e.circuit == c))
        .filter(|e| {
            let created = format::iso_date(e.created_at);
            du.as_deref().is_none_or(|d| created.as_str() >= d)
                && au.as_deref().is_none_or(|a| created.as_str() <= a)
        })
        .filter(|e| {
            let title = e.title.to_lowercase();
            words.iter().all(|w| title.contains(w.as_str()))
        })
        .collect();
    let tab = filled(&query.onglet)
        .and_then(Tab::parse)
        .unwrap_or(Tab::ToAct);
    let link = |t: Tab, after: Option<Cursor>| {
        let mut params = vec![
            ("bureau", desk.to_string()),
            ("onglet", t.slug().to_owned()),
        ];
        if let Some(c) = circuit_filter {
            params.push(("circuit", c.to_string()));
        }
        for (key, value) in [("du", &du), ("au", &au)] {
            if let Some(v) = value {
                params.push((key, v.clone()));
            }
        }
        if let Some(q) = filled(&query.q) {
            params.push(("q", q.to_owned()));
        }
        if let Some(cursor) = after {
            params.push(("apres", cursor.text()));
        }
        format!(
            "/bureau?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    };
    let tabs = Tab::ALL
        .into_iter()
        .map(|t| TabLink {
            href: link(t, None),
            label: t.label(),
            count: kept.iter().filter(|e| t.holds(e)).count(),
            current: t == tab,
        })
        .collect();
    let after = match filled(&query.apres) {
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            crate::http::problem::ApiError::invalid("apres", "lien de page invalide")
        })?),
        None => None,
    };
    let mut listed: Vec<&BureauEntry> = kept.iter().copied().filter(|e| tab.holds(e)).collect();
    // The cursor's order, whatever order the database gave.
    listed.sort_by_key(|e| (std::cmp::Reverse(e.updated_at), e.id));
    let start = after.map_or(0, |c| listed.iter().take_while(|e| !c.precedes(e)).count());
    let page_entries = &listed[start..listed.len().min(start + PAGE_SIZE)];
    let end = start + page_entries.len();
    let next = (end < listed.len())
        .then(|| page_entries.last().map(|e| link(tab, Some(Cursor::of(e)))))
        .flatten();
    let range = (listed.len() > PAGE_SIZE).then(|| {
        format!(
            "Dossiers {} à {} sur {}",
            (start + 1).min(end),
            end,
            listed.len()
        )
    });
    // The page before starts PAGE_SIZE rows earlier: after the row just before it, or at the
    // top; « Première page » is offered besides only when that is not the top.
    let previous = (start > 0).then(|| {
        let from = start.saturating_sub(PAGE_SIZE);
        link(tab, from.checked_sub(1).map(|i| Cursor::of(listed[i])))
    });
    let first = (start > PAGE_SIZE).then(|| link(tab, None));
    let rows: Vec<Row> = page_entries
        .iter()
        .map(|e| Row {
            id: e.id.to_string(),
            title: e.title.clone(),
            circuit: circuit_names.get(&e.circuit).cloned().unwrap_or_default(),
            status: match e.step_action {
                Some(action) => format!("{} (étape {})", format::step(action), e.current_step + 1),
                None => format::state(e.state).to_owned(),
            },
            created: format::date(e.created_at),
            deadline: e.deadline.map(format::date).unwrap_or_default(),
            late: e.late,
            signable: e.tab == BureauTab::ToAct && e.step_action == Some(StepAction::Signature),
        })
        .collect();
    let desk_name = choices
        .iter()
        .find(|(id, _)| *id == desk)
        .map_or_else(|| directory.desk_name(desk), |(_, n)| n.clone());
    let page = BureauPage {
        chrome,
        desks: choices
            .iter()
            .map(|(id, label)| DeskChoice {
                id: id.to_string(),
                label: label.clone(),
                selected: *id == desk,
            })
            .collect(),
        desk: desk.to_string(),
        desk_name,
        tabs,
        tab: tab.slug(),
        tab_label: tab.label(),
        circuits: circuits
            .iter()
            .map(|c| CircuitChoice {
                id: c.id.to_string(),
                name: c.name.clone(),
                selected: circuit_filter == Some(c.id),
            })
            .collect(),
        du: du.unwrap_or_default(),
        au: au.unwrap_or_default(),
        q: filled(&query.q).unwrap_or_default().to_owned(),
        signable: rows.iter().filter(|r| r.signable).count(),
        rows,
        range,
        first,
        previous,
        next,
    };
    render(&page)
}
