//! The bureau of a desk (`Engine::bureau`), on SQLite and PostgreSQL: every dossier the desk
//! deals with lands in exactly one tab as it moves, lateness follows the deadline, and only the
//! desk's holders, its delegates and administrators may read it.

mod common;

use common::{Harness, signed, world};
use seing_engine::EngineError;
use seing_engine::bureau::BureauTab;
use seing_engine::circuit::StepAction;
use seing_engine::metadata::Metadata;
use seing_engine::model::ActionInput;
use seing_engine::workflow::DossierState;

fn tab_of(
    entries: &[seing_engine::bureau::BureauEntry],
    id: seing_engine::ids::DossierId,
) -> Option<BureauTab> {
    entries.iter().find(|e| e.id == id).map(|e| e.tab)
}

async fn bureau_tabs_follow_the_dossier(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let (fin, maire) = (w.users["fin"], w.users["maire"]);
    let (fin_desk, maire_desk) = (w.desks["finances"], w.desks["maire"]);
    let a = w
        .submitted(e, "pes-bordereaux", "finances", "fin", Metadata::new())
        .await;
    let b = w
        .submitted(e, "pes-bordereaux", "finances", "fin", Metadata::new())
        .await;
    // Waiting for the finance visa: to act there, nothing yet for the mayor.
    let finances = e.bureau(fin, fin_desk).await.unwrap();
    assert_eq!(tab_of(&finances, a), Some(BureauTab::ToAct));
    let entry = finances.iter().find(|x| x.id == a).unwrap();
    assert_eq!(entry.step_action, Some(StepAction::Visa));
    assert!(!entry.late);
    assert_eq!(tab_of(&e.bureau(maire, maire_desk).await.unwrap(), a), None);
    e.visa(fin, a, ActionInput::default()).await.unwrap();
    e.visa(fin, b, ActionInput::default()).await.unwrap();
    let finances = e.bureau(fin, fin_desk).await.unwrap();
    assert_eq!(tab_of(&finances, a), Some(BureauTab::InProgress));
    let mayor = e.bureau(maire, maire_desk).await.unwrap();
    assert_eq!(tab_of(&mayor, a), Some(BureauTab::ToAct));
    assert_eq!(
        mayor.iter().find(|x| x.id == a).unwrap().step_action,
        Some(StepAction::Signature)
    );
    // Signed: done for the mayor; rejected: back to the emitter, done for the mayor.
    e.sign(maire, a, ActionInput::default(), signed(b"<PES/>"))
        .await
        .unwrap();
    e.reject(maire, b, "montants faux", ActionInput::default())
        .await
        .unwrap();
    let mayor = e.bureau(maire, maire_desk).await.unwrap();
    assert_eq!(tab_of(&mayor, a), Some(BureauTab::Done));
    assert_eq!(tab_of(&mayor, b), Some(BureauTab::Done));
    let finances = e.bureau(fin, fin_desk).await.unwrap();
    assert_eq!(tab_of(&finances, a), Some(BureauTab::Done));
    assert_eq!(tab_of(&finances, b), Some(BureauTab::Rejected));
    assert_eq!(
        finances.iter().find(|x| x.id == b).unwrap().state,
        DossierState::Rejected
    );
    // Someone else's desk is refused; the administrator may look.
    let refused = e.bureau(fin, maire_desk).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::Forbidden { .. }),
        "{refused:?}"
    );
    assert_eq!(e.bureau(w.admin, maire_desk).await.unwrap().len(), 2);
    // Another tenant's desk does not exist for this one.
    let other = world(e, "552100554").await;
    let foreign = e.bureau(other.users["fin"], fin_desk).await.unwrap_err();
    assert!(
        matches!(foreign, EngineError::NotFound { .. }),
        "{foreign:?}"
    );
}

both_backends! {
    bureau_tabs => super::bureau_tabs_follow_the_dossier;
}
