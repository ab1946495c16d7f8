//! Circuits: ordered steps, who acts on each, conditions and required metadata; templates
//! loaded from `workflows/*.toml` and instantiated by a tenant that maps role keys to its desks.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, EngineResult};
use crate::ids::DeskId;
use crate::metadata::Condition;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Approval without a cryptographic signature.
    Visa,
    /// Signature by a person, in a signature profile.
    Signature,
    /// Server seal (server key), triggered by a desk.
    Seal,
    /// Secure sending to an outside recipient, with proof of receipt (connector).
    Notification,
    /// Transmission to the prefecture (Actes) or the public accountant (Hélios) (connector).
    Transmission,
    /// Archiving as a SEDA package (connector).
    Archive,
}

impl StepAction {
    /// True for steps executed by a connector through a port rather than by a person.
    pub fn is_connector(self) -> bool {
        matches!(
            self,
            Self::Notification | Self::Transmission | Self::Archive
        )
    }

    /// The name used in templates and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Signature => "signature",
            Self::Seal => "seal",
            Self::Notification => "notification",
            Self::Transmission => "transmission",
            Self::Archive => "archive",
        }
    }
}

/// Signature format of a signature step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureProfile {
    /// PES V2 for Hélios (XAdES-EPES enveloped per bordereau).
    Pes,
    /// PAdES in the PDF.
    Pades,
    /// CAdES detached.
    Cades,
    /// XAdES.
    Xades,
}

/// Baseline level of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureLevel {
    /// Basic signature.
    #[serde(rename = "B-B")]
    BB,
    /// With a signature timestamp.
    #[serde(rename = "B-T")]
    BT,
}

/// Destination of a transmission step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// @ctes, the prefecture's legality control.
    Actes,
    /// Hélios, the public accountant (PES V2).
    Helios,
}

/// When several desks act on one step: one of them suffices, or all of them must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quorum {
    /// The first desk to act completes the step.
    Any,
    /// Every desk must act.
    All,
}

/// Who acts on a step; `D` is a role key in a template and a [`DeskId`] in a tenant's circuit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acting<D> {
    /// A fixed desk.
    Desk(D),
    /// The desk that created the dossier.
    Emitter,
    /// The parent of the emitter's desk (N+1).
    EmitterParent,
    /// A desk chosen at creation under this key.
    Chosen(String),
    /// Several desks, with `any` or `all` semantics.
    Desks {
        /// The desks.
        desks: Vec<D>,
        /// How many must act.
        quorum: Quorum,
    },
    /// Nobody: a connector executes the step.
    Connector,
}

/// One step of a circuit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec<D> {
    /// What the step does.
    pub action: StepAction,
    /// Who acts.
    pub acting: Acting<D>,
    /// Signature profile (signature steps only).
    pub profile: Option<SignatureProfile>,
    /// Signature level (signature steps only).
    pub level: Option<SignatureLevel>,
    /// Transmission destination (transmission steps only).
    pub channel: Option<Channel>,
    /// The step exists only when this holds at submission.
    pub when: Option<Condition>,
    /// Metadata that must be present to validate the step.
    pub required_to_validate: Vec<String>,
    /// Metadata that must be present to reject at this step.
    pub required_to_reject: Vec<String>,
}

/// A circuit: a name and its ordered steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitSpec<D> {
    /// Short name (the template's file stem).
    pub name: String,
    /// Human title (French).
    pub title: String,
    /// The steps, in order.
    pub steps: Vec<StepSpec<D>>,
}

/// A circuit template: desks are named by role keys.
pub type Template = CircuitSpec<String>;

/// A tenant's circuit: desks are the tenant's desks.
pub type Circuit = CircuitSpec<DeskId>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    title: String,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    action: StepAction,
    desk: Option<String>,
    actor: Option<RawActor>,
    chosen: Option<String>,
    desks: Option<Vec<String>>,
    quorum: Option<Quorum>,
    profile: Option<SignatureProfile>,
    level: Option<SignatureLevel>,
    channel: Option<Channel>,
    when: Option<String>,
    #[serde(default)]
    required_to_validate: Vec<String>,
    #[serde(default)]
    required_to_reject: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawActor {
    Emitter,
    EmitterParent,
}

impl Template {
    /// Parses and validates a template; `file` names it in errors.
    pub fn parse(file: &str, name: &str, text: &str) -> EngineResult<Self> {
        let err = |field: String, reason: String| EngineError::Template {
            file: file.to_owned(),
            field,
            reason,
        };
        let raw: RawTemplate = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(document)".to_owned());
            err(at, e.message().to_owned())
        })?;
        if raw.steps.is_empty() {
            return Err(err(
                "steps".into(),
                "a circuit needs at least one step".into(),
            ));
        }
        let mut steps = Vec::with_capacity(raw.steps.len());
        let mut seen_connector = false;
        for (i, step) in raw.steps.into_iter().enumerate() {
            let field = |name: &str| format!("steps[{i}].{name}");
            let who = [
                step.desk.is_some(),
                step.actor.is_some(),
                step.chosen.is_some(),
                step.desks.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            let acting = if step.action.is_connector() {
                if who != 0 {
                    return Err(err(
                        field("desk"),
                        format!(
                            "a {} step is run by a connector: name no desk",
                            step.action.as_str()
                        ),
                    ));
                }
                seen_connector = true;
                Acting::Connector
            } else {
                if seen_connector {
                    return Err(err(
                        field("action"),
                        "a step acted by a desk cannot follow a connector step".into(),
                    ));
                }
                if who != 1 {
                    return Err(err(
                        field("desk"),
                        "name exactly one of desk, actor, chosen or desks".into(),
                    ));
                }
                if let Some(desk) = step.desk {
                    Acting::Desk(desk)
                } else if let Some(actor) = step.actor {
                    match actor {
                        RawActor::Emitter => Acting::Emitter,
                        RawActor::EmitterParent => Acting::EmitterParent,
                    }
                } else if let Some(key) = step.chosen {
                    Acting::Chosen(key)
                } else {
                    let desks = step.desks.unwrap_or_default();
                    if desks.len() < 2 {
                        return Err(err(field("desks"), "list at least two desks".into()));
                    }
                    let quorum = step.quorum.ok_or_else(|| {
                        err(
                            field("quorum"),
                            "\"any\" or \"all\" is required with desks".into(),
                        )
                    })?;
                    Acting::Desks { desks, quorum }
                }
            };
            if step.quorum.is_some() && !matches!(acting, Acting::Desks { .. }) {
                return Err(err(field("quorum"), "only meaningful with desks".into()));
            }
            match step.action {
                StepAction::Signature if step.profile.is_none() => {
                    return Err(err(
                        field("profile"),
                        "a signature step needs a profile (pes, pades, cades, xades)".into(),
                    ));
                }
                StepAction::Transmission if step.channel.is_none() => {
                    return Err(err(
                        field("channel"),
                        "a transmission step needs a channel (actes, helios)".into(),
                    ));
                }
                _ => {}
            }
            if step.action != StepAction::Signature
                && (step.profile.is_some() || step.level.is_some())
            {
                return Err(err(
                    field("profile"),
                    "only signature steps have a profile and a level".into(),
                ));
            }
            if step.action != StepAction::Transmission && step.channel.is_some() {
                return Err(err(
                    field("channel"),
                    "only transmission steps have a channel".into(),
                ));
            }
            let when = step
                .when
                .map(|w| {
                    w.parse::<Condition>()
                        .map_err(|reason| err(field("when"), reason))
                })
                .transpose()?;
            steps.push(StepSpec {
                action: step.action,
                acting,
                profile: step.profile,
                level: step
                    .profile
                    .map(|_| step.level.unwrap_or(SignatureLevel::BB)),
                channel: step.channel,
                when,
                required_to_validate: step.required_to_validate,
                required_to_reject: step.required_to_reject,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            title: raw.title,
            steps,
        })
    }

    /// Loads every `*.toml` file of `dir`, sorted by name; the first broken one is an error.
    pub fn load_dir(dir: &Path) -> EngineResult<BTreeMap<String, Self>> {
        let entries = std::fs::read_dir(dir).map_err(|e| EngineError::Template {
            file: dir.display().to_string(),
            field: "(folder)".into(),
            reason: e.to_string(),
        })?;
        let mut templates = BTreeMap::new();
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| EngineError::Template {
                file: file.clone(),
                field: "(file)".into(),
                reason: e.to_string(),
            })?;
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            templates.insert(name.clone(), Self::parse(&file, &name, &text)?);
        }
        Ok(templates)
    }

    /// The desk each role of this template has in `circuit`, a circuit made from it: the
    /// template's steps and the circuit's match one to one (conditions are only weighed at
    /// submission).
    pub fn role_desks(&self, circuit: &Circuit) -> BTreeMap<String, DeskId> {
        let mut roles = BTreeMap::new();
        for (role_step, desk_step) in self.steps.iter().zip(&circuit.steps) {
            match (&role_step.acting, &desk_step.acting) {
                (Acting::Desk(role), Acting::Desk(desk)) => {
                    roles.insert(role.clone(), *desk);
                }
                (Acting::Desks { desks: keys, .. }, Acting::Desks { desks, .. }) => {
                    roles.extend(keys.iter().cloned().zip(desks.iter().copied()));
                }
                _ => {}
            }
        }
        roles
    }

    /// Role keys of fixed desks that a tenant must map to instantiate this template.
    pub fn roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> = self
            .steps
            .iter()
            .flat_map(|s| match &s.acting {
                Acting::Desk(d) => vec![d.as_str()],
                Acting::Desks { desks, .. } => desks.iter().map(String::as_str).collect(),
                _ => vec![],
            })
            .collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    /// Replaces role keys by the tenant's desks (`roles` maps key → desk).
    pub fn instantiate(&self, roles: &BTreeMap<String, DeskId>) -> EngineResult<Circuit> {
        let map = |key: &String| {
            roles.get(key).copied().ok_or_else(|| {
                EngineError::invalid(format!("roles.{key}"), "no desk given for this role")
            })
        };
        let steps = self
            .steps
            .iter()
            .map(|s| {
                let acting = match &s.acting {
                    Acting::Desk(d) => Acting::Desk(map(d)?),
                    Acting::Desks { desks, quorum } => Acting::Desks {
                        desks: desks.iter().map(map).collect::<EngineResult<_>>()?,
                        quorum: *quorum,
                    },
                    Acting::Emitter => Acting::Emitter,
                    Acting::EmitterParent => Acting::EmitterParent,
                    Acting::Chosen(k) => Acting::Chosen(k.clone()),
                    Acting::Connector => Acting::Connector,
                };
                Ok(StepSpec {
                    action: s.action,
                    acting,
                    profile: s.profile,
                    level: s.level,
                    channel: s.channel,
                    when: s.when.clone(),
                    required_to_validate: s.required_to_validate.clone(),
                    required_to_reject: s.required_to_reject.clone(),
                })
            })
            .collect::<EngineResult<_>>()?;
        Ok(Circuit {
            name: self.name.clone(),
            title: self.title.clone(),
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> String {
        match Template::parse("x.toml", "x", text) {
            Err(EngineError::Template { file, field, .. }) => {
                assert_eq!(file, "x.toml");
                field
            }
            other => panic!("expected a template error, got {other:?}"),
        }
    }

    #[test]
    fn the_shipped_templates_load_and_a_broken_file_is_named() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        let templates = Template::load_dir(&shipped).unwrap();
        let names: Vec<&str> = templates.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "actes-deliberation",
                "conges",
                "frais-deplacement",
                "marches-notification",
                "pes-bordereaux",
                "visa-signature"
            ]
        );
        assert_eq!(templates["pes-bordereaux"].roles(), ["finances", "maire"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ok.toml"),
            "title = \"t\"\n[[steps]]\naction = \"visa\"\nactor = \"emitter\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("broken.toml"),
            "title = \"t\"\n[[steps]]\naction = \"transmission\"\n",
        )
        .unwrap();
        match Template::load_dir(dir.path()) {
            Err(EngineError::Template { file, field, .. }) => {
                assert!(file.ends_with("broken.toml"), "{file}");
                assert_eq!(field, "steps[0].channel");
            }
            other => panic!("expected a template error, got {other:?}"),
        }
    }

    #[test]
    fn a_circuit_gives_back_the_desks_its_roles_were_given() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        for template in Template::load_dir(&shipped).unwrap().values() {
            let roles: BTreeMap<String, DeskId> = template
                .roles()
                .into_iter()
                .map(|r| (r.to_owned(), DeskId::new()))
                .collect();
            let circuit = template.instantiate(&roles).unwrap();
            assert_eq!(template.role_desks(&circuit), roles, "{}", template.name);
        }
    }

    #[test]
    fn broken_templates_name_the_field() {
        assert_eq!(
            field_of("title = \"t\"\n[[steps]]\naction = \"signature\"\ndesk = \"maire\"\n"),
            "steps[0].profile"
        );
        assert_eq!(
            field_of(
                "title = \"t\"\n[[steps]]\naction = \"visa\"\ndesk = \"a\"\nwhen = \"amount >\"\n"
            ),
            "steps[0].when"
        );
        assert_eq!(
            field_of(
                "title = \"t\"\n[[steps]]\naction = \"archive\"\n[[steps]]\naction = \"visa\"\ndesk = \"a\"\n"
            ),
            "steps[1].action"
        );
        assert_eq!(
            field_of("title = \"t\"\n[[steps]]\naction = \"visa\"\ndesks = [\"a\", \"b\"]\n"),
            "steps[0].quorum"
        );
        assert_eq!(
            field_of("title = \"t\"\n[[steps]]\naction = \"vize\"\ndesk = \"a\"\n"),
            "line 3"
        );
        assert_eq!(field_of("title = \"t\"\nsteps = []\n"), "steps");
    }
}
