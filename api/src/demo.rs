//! `seing serve --demo`: an authority to try seing with — users with known passwords, desks,
//! one circuit per template and a few dossiers (a generated PDF, a minimal PES). Seeding is
//! idempotent: an existing demo authority is left as it is.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use seing_engine::Engine;
use seing_engine::ids::{CircuitId, DeskId};
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{Actor, NewDocument, NewDossier, NewTenant};

/// Name of the demo authority.
pub const DEMO_NAME: &str = "Commune de Démo";
/// SIREN of the demo authority (Luhn-valid, not a real authority's).
pub const DEMO_SIREN: &str = "213500002";

/// Demo users: login, display name, desk held, desk's parent.
pub const DEMO_USERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("maire", "Claire Martin, maire", "Maire", None),
    ("dgs", "Paul Bernard, DGS", "DGS", None),
    (
        "finances",
        "Sophie Petit, finances",
        "Finances",
        Some("DGS"),
    ),
    ("drh", "Luc Moreau, DRH", "DRH", Some("DGS")),
    ("agent", "Julie Roux, agent", "Agents", Some("DRH")),
];

/// The desk that plays each role key of the templates.
const ROLE_DESKS: &[(&str, &str)] = &[
    ("maire", "Maire"),
    ("signataire", "Maire"),
    ("dgs", "DGS"),
    ("viseur", "DGS"),
    ("marches", "DGS"),
    ("finances", "Finances"),
    ("comptable", "Finances"),
    ("drh", "DRH"),
];

/// The known password of a demo login.
pub fn demo_password(login: &str) -> String {
    format!("demo-{login}-2026")
}

/// Seeds the demo authority unless it exists, then prints how to log in.
pub async fn seed(engine: &Engine, listen: SocketAddr) -> anyhow::Result<()> {
    let token = match engine.tenant_by_siren(DEMO_SIREN).await? {
        Some(_) => None,
        None => Some(
            create(engine)
                .await
                .context("cannot seed the demo authority")?,
        ),
    };
    println!("Démo : collectivité « {DEMO_NAME} », SIREN {DEMO_SIREN}");
    println!("  identifiant          mot de passe");
    for login in std::iter::once("admin").chain(DEMO_USERS.iter().map(|u| u.0)) {
        println!("  {login:<20} {}", demo_password(login));
    }
    println!("Interface web : http://{listen}/");
    println!("Connexion à l'API : POST http://{listen}/api/v1/session");
    println!(
        "  {{\"tenant\": \"{DEMO_SIREN}\", \"login\": \"maire\", \"password\": \"{}\"}}",
        demo_password("maire")
    );
    println!(
        "  puis cookie seing_session + en-tête X-CSRF-Token (valeur csrf_token de la réponse)"
    );
    if let Some(token) = token {
        println!("Jeton d'API du logiciel de finances (affiché une seule fois) : {token}");
    }
    println!("Documentation de l'API : http://{listen}/api/v1/docs");
    Ok(())
}

/// Creates the authority, its users, desks, circuits, an API token and two dossiers; returns
/// the token's secret.
async fn create(engine: &Engine) -> anyhow::Result<String> {
    let (tenant, admin) = engine
        .create_tenant(NewTenant {
            name: DEMO_NAME.to_owned(),
            siren: DEMO_SIREN.to_owned(),
            departement: "35".to_owned(),
            admin_login: "admin".to_owned(),
            admin_name: "Administrateur de la démo".to_owned(),
        })
        .await?;
    let admin = Actor {
        tenant: tenant.id,
        user: admin.id,
    };
    set_password(engine, admin, "admin").await?;
    let mut desks: BTreeMap<&str, DeskId> = BTreeMap::new();
    let mut users: BTreeMap<&str, Actor> = BTreeMap::new();
    for (login, name, desk, parent) in DEMO_USERS {
        let user = engine.create_user(admin, login, name, false).await?;
        let actor = Actor {
            tenant: tenant.id,
            user: user.id,
        };
        set_password(engine, actor, login).await?;
        let parent = parent.map(|p| desks[p]);
        let created = engine.create_desk(admin, desk, parent, &[user.id]).await?;
        desks.insert(desk, created.id);
        users.insert(login, actor);
    }
    let circuits = import_templates(engine, admin, &desks).await?;
    let secret = crate::http::auth::new_token_secret()?;
    engine
        .create_api_token(
            Some(users["finances"]),
            seing_engine::access::Role::User,
            "Logiciel de finances (démo)",
            &crate::http::auth::secret_hash(&secret),
        )
        .await?;
    if let Some(&circuit) = circuits.get("pes-bordereaux") {
        let mut metadata = Metadata::new();
        metadata.insert("montant".to_owned(), MetaValue::Integer(12_500));
        submit_dossier(
            engine,
            users["finances"],
            circuit,
            desks["Finances"],
            "Bordereaux de mandats n° 42",
            NewDocument {
                name: "PES_Aller_demo.xml".to_owned(),
                media_type: "text/xml".to_owned(),
                bytes: demo_pes(),
            },
            metadata,
        )
        .await?;
    }
    if let Some(&circuit) = circuits.get("visa-signature") {
        submit_dossier(
            engine,
            users["agent"],
            circuit,
            desks["Agents"],
            "Arrêté de voirie — rue des Lilas",
            NewDocument {
                name: "arrete-voirie.pdf".to_owned(),
                media_type: "application/pdf".to_owned(),
                bytes: demo_pdf("Arrete de voirie - rue des Lilas"),
            },
            Metadata::new(),
        )
        .await?;
    }
    Ok(secret)
}

async fn set_password(engine: &Engine, actor: Actor, login: &str) -> anyhow::Result<()> {
    let hash = crate::http::auth::hash_password(&demo_password(login))?;
    engine
        .set_password_hash(actor.tenant, actor.user, &hash)
        .await?;
    Ok(())
}

/// Instantiates every template whose role keys all name a desk of `desks` (through the demo's
/// role table), as a circuit named after the template; returns the circuits by template.
async fn import_templates(
    engine: &Engine,
    admin: Actor,
    desks: &BTreeMap<&str, DeskId>,
) -> anyhow::Result<BTreeMap<String, CircuitId>> {
    let mut circuits = BTreeMap::new();
    for (name, template) in engine.templates() {
        let roles: Option<BTreeMap<String, DeskId>> = template
            .roles()
            .into_iter()
            .map(|role| {
                ROLE_DESKS
                    .iter()
                    .find(|(r, _)| *r == role)
                    .and_then(|(_, desk)| desks.get(desk))
                    .map(|d| (role.to_owned(), *d))
            })
            .collect();
        if let Some(roles) = roles {
            let circuit = engine
                .create_circuit(admin, &template.title, name, &roles)
                .await?;
            circuits.insert(name.clone(), circuit.id);
        }
    }
    Ok(circuits)
}

async fn submit_dossier(
    engine: &Engine,
    actor: Actor,
    circuit: CircuitId,
    emitter_desk: DeskId,
    title: &str,
    main: NewDocument,
    metadata: Metadata,
) -> anyhow::Result<()> {
    let dossier = engine
        .create_dossier(
            actor,
            NewDossier {
                circuit,
                emitter_desk,
                title: title.to_owned(),
                main,
                annexes: Vec::new(),
                metadata,
                chosen_desks: BTreeMap::new(),
                deadline: None,
            },
        )
        .await?;
    engine
        .submit(actor, dossier.id, Some(dossier.version))
        .await?;
    Ok(())
}

/// A one-page PDF 1.4 showing `text` (ASCII), with a correct cross-reference table.
pub fn demo_pdf(text: &str) -> Vec<u8> {
    let text: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .map(|c| {
            if matches!(c, '(' | ')' | '\\') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let content = format!("BT /F1 18 Tf 72 760 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A minimal PES Aller with one bordereau of one mandate (demo data, not for Hélios).
pub fn demo_pes() -> Vec<u8> {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">
  <EnTetePES>
    <DteStr V="2026-11-02"/>
    <IdPost V="035000"/>
    <LibelleColBud V="COMMUNE DE DEMO"/>
    <IdColl V="21350000200019"/>
    <CodCol V="001"/>
    <CodBud V="00"/>
  </EnTetePES>
  <PES_DepenseAller>
    <EnTeteDepense>
      <IdVer V="2"/>
      <InfoDematerialisee V="0"/>
    </EnTeteDepense>
    <Bordereau Id="BORD-42">
      <BlocBordereau>
        <Exer V="2026"/>
        <IdBord V="42"/>
        <DteBordEm V="2026-11-02"/>
        <TypBord V="01"/>
        <NbrPce V="1"/>
        <MtCumulAnnuel V="12500.00"/>
        <MtBordHT V="12500.00"/>
      </BlocBordereau>
    </Bordereau>
  </PES_DepenseAller>
</n:PES_Aller>
"#
    .as_bytes()
    .to_vec()
}
