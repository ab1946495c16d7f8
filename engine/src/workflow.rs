//! The workflow state machine, pure: a dossier's resolved steps, its state and current step,
//! and the transitions that actions and connector reports cause. No I/O, so it is property-tested.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::circuit::{
    Acting, Channel, Circuit, Quorum, SignatureLevel, SignatureProfile, StepAction,
};
use crate::error::{EngineError, EngineResult};
use crate::ids::DeskId;
use crate::metadata::Metadata;

/// The state of a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DossierState {
    /// Being prepared by its emitter.
    Draft,
    /// Waiting for the desks of the current step.
    Pending,
    /// Rejected, back at the emitter.
    Rejected,
    /// Every step acted by a desk is done (connector steps may follow).
    Finished,
    /// Sent by a transmission or notification connector, waiting for the acknowledgement.
    Transmitted,
    /// The recipient acknowledged it.
    Acknowledged,
    /// Archived.
    Archived,
}

impl DossierState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Pending => "pending",
            Self::Rejected => "rejected",
            Self::Finished => "finished",
            Self::Transmitted => "transmitted",
            Self::Acknowledged => "acknowledged",
            Self::Archived => "archived",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Pending,
            Self::Rejected,
            Self::Finished,
            Self::Transmitted,
            Self::Acknowledged,
            Self::Archived,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One step of a dossier's circuit, resolved at submission: concrete desks, and who has acted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInstance {
    /// What the step does.
    pub action: StepAction,
    /// The desks that act (empty for connector steps).
    pub desks: Vec<DeskId>,
    /// Whether one or all of the desks must act.
    pub quorum: Quorum,
    /// Signature profile (signature steps).
    pub profile: Option<SignatureProfile>,
    /// Signature level (signature steps).
    pub level: Option<SignatureLevel>,
    /// Destination (transmission steps).
    pub channel: Option<Channel>,
    /// Metadata required to validate.
    pub required_to_validate: Vec<String>,
    /// Metadata required to reject.
    pub required_to_reject: Vec<String>,
    /// Desks that have acted on this step.
    pub done_by: Vec<DeskId>,
    /// True when an administrator bypassed the step.
    pub bypassed: bool,
}

impl StepInstance {
    /// Desks that still have to act on this step.
    pub fn waiting_desks(&self) -> Vec<DeskId> {
        if self.action.is_connector() || self.is_complete() {
            return Vec::new();
        }
        self.desks
            .iter()
            .filter(|d| !self.done_by.contains(d))
            .copied()
            .collect()
    }

    /// True once the quorum is met (or the step was bypassed).
    pub fn is_complete(&self) -> bool {
        self.bypassed
            || match self.quorum {
                Quorum::Any => !self.done_by.is_empty(),
                Quorum::All => self.desks.iter().all(|d| self.done_by.contains(d)),
            }
    }
}

/// Resolves a circuit for one dossier: keeps the steps whose condition holds and names the desks.
pub fn resolve_steps(
    circuit: &Circuit,
    emitter: DeskId,
    emitter_parent: Option<DeskId>,
    chosen: &BTreeMap<String, DeskId>,
    metadata: &Metadata,
) -> EngineResult<Vec<StepInstance>> {
    let mut steps = Vec::new();
    for spec in &circuit.steps {
        if spec.when.as_ref().is_some_and(|c| !c.holds(metadata)) {
            continue;
        }
        let (desks, quorum) = match &spec.acting {
            Acting::Desk(d) => (vec![*d], Quorum::Any),
            Acting::Emitter => (vec![emitter], Quorum::Any),
            Acting::EmitterParent => (
                vec![emitter_parent.ok_or_else(|| {
                    EngineError::invalid(
                        "emitter_desk",
                        "le bureau émetteur n'a pas de bureau parent (N+1) pour ce circuit",
                    )
                })?],
                Quorum::Any,
            ),
            Acting::Chosen(key) => (
                vec![*chosen.get(key).ok_or_else(|| {
                    EngineError::invalid(
                        format!("chosen_desks.{key}"),
                        "bureau à choisir à la création",
                    )
                })?],
                Quorum::Any,
            ),
            Acting::Desks { desks, quorum } => (desks.clone(), *quorum),
            Acting::Connector => (Vec::new(), Quorum::Any),
        };
        steps.push(StepInstance {
            action: spec.action,
            desks,
            quorum,
            profile: spec.profile,
            level: spec.level,
            channel: spec.channel,
            required_to_validate: spec.required_to_validate.clone(),
            required_to_reject: spec.required_to_reject.clone(),
            done_by: Vec::new(),
            bypassed: false,
        });
    }
    Ok(steps)
}

/// Who refused a dossier from outside (see [`ConnectorEvent::Refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refuser {
    /// The prefecture (@ctes anomaly, refused or cancelled Actes transaction, or an act that
    /// S²LOW refuses to take).
    Prefecture,
    /// The DGFiP (a `PES_Acquit` refusing the file).
    Dgfip,
    /// The archive service (an `ArchiveTransferReply` rejecting the transfer).
    Archive,
    /// The notification's recipient, whose mail server refuses the address.
    Recipient,
}

/// Who sent a dossier back to its emitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionOrigin {
    /// A desk of the circuit rejected it.
    Desk,
    /// The prefecture refused the act.
    Prefecture,
    /// The DGFiP refused the PES file.
    Dgfip,
    /// The archive service rejected the transfer.
    Archive,
    /// The notification's recipient never opened its link before it expired.
    Recipient,
}

impl From<Refuser> for RejectionOrigin {
    fn from(refuser: Refuser) -> Self {
        match refuser {
            Refuser::Prefecture => Self::Prefecture,
            Refuser::Dgfip => Self::Dgfip,
            Refuser::Archive => Self::Archive,
            Refuser::Recipient => Self::Recipient,
        }
    }
}

/// What a connector reports about the current connector step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorEvent {
    /// Sent (transmission or notification).
    Transmitted,
    /// Acknowledged by the recipient.
    Acknowledged,
    /// Archived.
    Archived,
    /// Refused by the outside system, for the reasons it gave: back to the emitter.
    Refused {
        /// Who refused.
        by: Refuser,
        /// The reasons, as the outside system gave them.
        reason: String,
    },
    /// The notification link expired unopened: back to the emitter.
    Expired,
}

impl ConnectorEvent {
    /// Where a refusal or an expiry sends the dossier back from; `None` for the other reports.
    pub fn rejection(&self) -> Option<(RejectionOrigin, &str)> {
        match self {
            Self::Refused { by, reason } => Some(((*by).into(), reason.as_str())),
            Self::Expired => Some((RejectionOrigin::Recipient, "lien expiré sans ouverture")),
            _ => None,
        }
    }
}

/// The workflow position of a dossier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The state.
    pub state: DossierState,
    /// Index of the current step (equal to the number of steps once all are done).
    pub current_step: usize,
    /// The resolved steps.
    pub steps: Vec<StepInstance>,
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Other desks of an `all` step must still act.
    Waiting,
    /// The dossier moved to the next step acted by a desk.
    NextStep,
    /// The dossier left the desks; `Some(k)` when connector step `k` must now be started.
    Done(Option<usize>),
}

impl Progress {
    /// A draft, not yet resolved.
    pub fn draft() -> Self {
        Self {
            state: DossierState::Draft,
            current_step: 0,
            steps: Vec::new(),
        }
    }

    /// The current step, if the dossier is at one.
    pub fn current(&self) -> Option<&StepInstance> {
        self.steps.get(self.current_step)
    }

    /// Desks that must act now.
    pub fn waiting_desks(&self) -> Vec<DeskId> {
        match (self.state, self.current()) {
            (DossierState::Pending, Some(step)) => step.waiting_desks(),
            _ => Vec::new(),
        }
    }

    /// Starts the circuit from its first step.
    pub fn submit(&mut self, steps: Vec<StepInstance>) -> Advance {
        self.steps = steps;
        self.current_step = 0;
        self.state = DossierState::Pending;
        self.settle()
    }

    /// Moves past completed steps; leaves the desks when a connector step or the end is reached.
    fn settle(&mut self) -> Advance {
        let mut moved = false;
        while let Some(step) = self.steps.get(self.current_step) {
            if step.action.is_connector() {
                self.state = DossierState::Finished;
                return Advance::Done(Some(self.current_step));
            }
            if !step.is_complete() {
                return if moved {
                    Advance::NextStep
                } else {
                    Advance::Waiting
                };
            }
            self.current_step += 1;
            moved = true;
        }
        self.state = DossierState::Finished;
        Advance::Done(None)
    }

    /// Records that `desk` acted on the current step (visa, signature or seal).
    pub fn approve(&mut self, desk: DeskId) -> EngineResult<Advance> {
        let step = self
            .steps
            .get_mut(self.current_step)
            .filter(|_| self.state == DossierState::Pending)
            .ok_or_else(|| {
                EngineError::conflict("le dossier n'attend aucune action d'un bureau")
            })?;
        if !step.waiting_desks().contains(&desk) {
            return Err(EngineError::conflict(
                "ce bureau a déjà agi sur cette étape",
            ));
        }
        step.done_by.push(desk);
        Ok(self.settle())
    }

    /// An administrator forces the current step as done.
    pub fn bypass(&mut self) -> EngineResult<Advance> {
        let step = self
            .steps
            .get_mut(self.current_step)
            .filter(|_| self.state == DossierState::Pending)
            .ok_or_else(|| EngineError::conflict("le dossier n'est à aucune étape d'un bureau"))?;
        step.bypassed = true;
        Ok(self.settle())
    }

    /// Rejects the dossier: it goes back to its emitter.
    pub fn reject(&mut self) -> EngineResult<()> {
        if self.state != DossierState::Pending {
            return Err(EngineError::conflict(
                "seul un dossier en cours peut être rejeté",
            ));
        }
        self.state = DossierState::Rejected;
        Ok(())
    }

    /// Replaces `from` by `to` among the desks of the current step.
    pub fn transfer(&mut self, from: DeskId, to: DeskId) -> EngineResult<()> {
        let step = self
            .steps
            .get_mut(self.current_step)
            .filter(|_| self.state == DossierState::Pending)
            .ok_or_else(|| EngineError::conflict("le dossier n'est à aucune étape d'un bureau"))?;
        if step.desks.contains(&to) {
            return Err(EngineError::invalid(
                "desk",
                "ce bureau agit déjà sur cette étape",
            ));
        }
        let slot =
            step.desks.iter_mut().find(|d| **d == from).ok_or_else(|| {
                EngineError::conflict("ce bureau n'agit pas sur l'étape courante")
            })?;
        *slot = to;
        Ok(())
    }

    /// Applies a connector report to the current connector step; returns the next connector
    /// step to start, if the dossier moved on to one.
    pub fn connector_event(&mut self, event: ConnectorEvent) -> EngineResult<Option<usize>> {
        // An archive step is reported archived once the package is deposited: the archive
        // service's rejecting reply comes after, and takes the dossier back from that step.
        let archive_before = self
            .current_step
            .checked_sub(1)
            .and_then(|k| self.steps.get(k))
            .is_some_and(|s| s.action == StepAction::Archive);
        if matches!(
            event,
            ConnectorEvent::Refused {
                by: Refuser::Archive,
                ..
            }
        ) && self.state == DossierState::Archived
            && archive_before
        {
            self.current_step -= 1;
            self.state = DossierState::Rejected;
            return Ok(None);
        }
        if self.state == DossierState::Rejected {
            return Err(EngineError::conflict(
                "le dossier a été rejeté : plus aucun compte rendu n'est attendu",
            ));
        }
        let step = self
            .current()
            .filter(|s| s.action.is_connector())
            .ok_or_else(|| {
                EngineError::conflict("le dossier n'est à aucune étape de connecteur")
            })?;
        let sends = matches!(
            step.action,
            StepAction::Transmission | StepAction::Notification
        );
        let expected_state = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(EngineError::conflict(format!(
                    "compte rendu « {event:?} » inattendu à l'étape {} (état {})",
                    step.action.as_str(),
                    self.state.as_str()
                )))
            }
        };
        match &event {
            ConnectorEvent::Refused { by, .. } => {
                let expected = match by {
                    Refuser::Prefecture => step.channel == Some(Channel::Actes),
                    Refuser::Dgfip => step.channel == Some(Channel::Helios),
                    Refuser::Archive => step.action == StepAction::Archive,
                    Refuser::Recipient => step.action == StepAction::Notification,
                };
                // A transmission or a notification is refused once sent, or at sending by the
                // platform or the recipient's mail server itself.
                let waiting = if step.action == StepAction::Archive {
                    self.state != DossierState::Archived
                } else {
                    sends
                        && matches!(
                            self.state,
                            DossierState::Finished | DossierState::Transmitted
                        )
                };
                expected_state(expected && waiting)?;
                self.state = DossierState::Rejected;
                Ok(None)
            }
            ConnectorEvent::Expired => {
                expected_state(
                    step.action == StepAction::Notification
                        && self.state == DossierState::Transmitted,
                )?;
                self.state = DossierState::Rejected;
                Ok(None)
            }
            ConnectorEvent::Transmitted => {
                expected_state(sends && self.state != DossierState::Transmitted)?;
                self.state = DossierState::Transmitted;
                Ok(None)
            }
            ConnectorEvent::Acknowledged => {
                expected_state(sends && self.state == DossierState::Transmitted)?;
                self.state = DossierState::Acknowledged;
                Ok(self.next_connector())
            }
            ConnectorEvent::Archived => {
                expected_state(step.action == StepAction::Archive)?;
                self.state = DossierState::Archived;
                Ok(self.next_connector())
            }
        }
    }

    fn next_connector(&mut self) -> Option<usize> {
        self.current_step += 1;
        self.current().map(|_| self.current_step)
    }

    /// Checks the invariants every reachable position satisfies (used by property tests).
    pub fn check(&self) -> Result<(), String> {
        let len = self.steps.len();
        match self.state {
            DossierState::Draft => Ok(()),
            DossierState::Pending | DossierState::Rejected => {
                let step = self
                    .current()
                    .ok_or_else(|| format!("{:?} past the last step", self.state))?;
                // A connector step's refusal leaves a rejected dossier at that step.
                if self.state == DossierState::Pending && step.action.is_connector() {
                    return Err("waiting for a desk at a connector step".into());
                }
                if self.state == DossierState::Pending && step.waiting_desks().is_empty() {
                    return Err("pending with nobody to act".into());
                }
                if self.steps[..self.current_step]
                    .iter()
                    .any(|s| !s.action.is_connector() && !s.is_complete())
                {
                    return Err("an earlier step is incomplete".into());
                }
                Ok(())
            }
            DossierState::Finished
            | DossierState::Transmitted
            | DossierState::Acknowledged
            | DossierState::Archived => {
                if self
                    .steps
                    .iter()
                    .take(self.current_step.min(len))
                    .any(|s| !s.action.is_connector() && !s.is_complete())
                {
                    return Err("finished with an incomplete step".into());
                }
                match self.current() {
                    Some(s) if !s.action.is_connector() => {
                        Err("finished while a desk step remains".into())
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: StepAction, desks: Vec<DeskId>, quorum: Quorum) -> StepInstance {
        StepInstance {
            action,
            desks,
            quorum,
            profile: None,
            level: None,
            channel: None,
            required_to_validate: vec![],
            required_to_reject: vec![],
            done_by: vec![],
            bypassed: false,
        }
    }

    #[test]
    fn all_quorum_waits_for_every_desk_then_connectors_run_in_order() {
        let (a, b) = (DeskId::new(), DeskId::new());
        let mut p = Progress::draft();
        let steps = vec![
            step(StepAction::Visa, vec![a, b], Quorum::All),
            step(StepAction::Transmission, vec![], Quorum::Any),
            step(StepAction::Archive, vec![], Quorum::Any),
        ];
        assert_eq!(p.submit(steps), Advance::Waiting);
        assert_eq!(p.approve(a).unwrap(), Advance::Waiting);
        assert!(matches!(p.approve(a), Err(EngineError::Conflict { .. })));
        assert_eq!(p.approve(b).unwrap(), Advance::Done(Some(1)));
        assert_eq!(p.state, DossierState::Finished);
        assert!(p.connector_event(ConnectorEvent::Acknowledged).is_err());
        assert!(p.connector_event(ConnectorEvent::Archived).is_err());
        assert_eq!(
            p.connector_event(ConnectorEvent::Transmitted).unwrap(),
            None
        );
        assert_eq!(
            p.connector_event(ConnectorEvent::Acknowledged).unwrap(),
            Some(2)
        );
        assert_eq!(p.state, DossierState::Acknowledged);
        assert_eq!(p.connector_event(ConnectorEvent::Archived).unwrap(), None);
        assert_eq!(p.state, DossierState::Archived);
        p.check().unwrap();
    }

    #[test]
    fn refusals_send_back_only_from_their_own_step() {
        let a = DeskId::new();
        let mut transmission = step(StepAction::Transmission, vec![], Quorum::Any);
        transmission.channel = Some(Channel::Actes);
        let mut p = Progress::draft();
        p.submit(vec![
            step(StepAction::Visa, vec![a], Quorum::Any),
            transmission,
            step(StepAction::Archive, vec![], Quorum::Any),
        ]);
        p.approve(a).unwrap();
        let refused = |by| ConnectorEvent::Refused {
            by,
            reason: "r".into(),
        };
        // Neither the DGFiP, the archive nor a mail recipient answer for an act, sent or not.
        assert!(p.connector_event(refused(Refuser::Recipient)).is_err());
        assert!(p.connector_event(refused(Refuser::Dgfip)).is_err());
        assert!(p.connector_event(refused(Refuser::Archive)).is_err());
        // The platform may refuse the act at sending: back to the emitter from that step.
        let mut at_sending = p.clone();
        assert_eq!(
            at_sending
                .connector_event(refused(Refuser::Prefecture))
                .unwrap(),
            None
        );
        assert_eq!(
            (at_sending.state, at_sending.current_step),
            (DossierState::Rejected, 1)
        );
        at_sending.check().unwrap();
        p.connector_event(ConnectorEvent::Transmitted).unwrap();
        assert!(p.connector_event(refused(Refuser::Dgfip)).is_err());
        assert!(p.connector_event(refused(Refuser::Archive)).is_err());
        assert!(p.connector_event(ConnectorEvent::Expired).is_err());
        assert_eq!(
            p.connector_event(refused(Refuser::Prefecture)).unwrap(),
            None
        );
        assert_eq!((p.state, p.current_step), (DossierState::Rejected, 1));
        p.check().unwrap();
        assert!(p.connector_event(ConnectorEvent::Acknowledged).is_err());
        // An archive rejected after it was reported archived goes back to the archive step.
        let mut q = Progress::draft();
        q.submit(vec![step(StepAction::Archive, vec![], Quorum::Any)]);
        q.connector_event(ConnectorEvent::Archived).unwrap();
        assert_eq!(q.connector_event(refused(Refuser::Archive)).unwrap(), None);
        assert_eq!((q.state, q.current_step), (DossierState::Rejected, 0));
        q.check().unwrap();
    }
}
