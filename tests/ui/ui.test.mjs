// Browser tests of the seing web UI: Playwright (playwright-core) drives Debian's chromium,
// headless, against a `seing serve --demo` started by api/tests/ui.rs, which passes:
//   SEING_URL            the service's base URL
//   SEING_SIREN          the demo authority's SIREN
//   SEING_FINANCE_TOKEN  the API token of the demo's finance software
//   SEING_PES_DIR        PES files to create as dossiers (PES_01.xml …)
//   SEING_OTHER_TENANT   "SIREN login password" of a user of another authority
//   SEING_SCREENSHOTS    where to save screenshots of the main pages
//   SEING_SIGN_PIN       (optional) PIN of the maire's server-held key: runs the batch signing
//   SEING_AGENT_PIN      (optional) PIN of the token behind `seing agent`: signs through it
//   SEING_AGENT_SIGNER   (with SEING_AGENT_PIN) the name on the agent's certificate to use
//   SEING_AGENT_URL      (with SEING_AGENT_PIN) where the agent listens
//   SEING_SIGNED_DIR     (with a PIN) where to save the signed PES files for the oracle
//   SEING_TRUST_CRL      a PEM CRL to add to the trust store and remove, in the administration
//   SEING_SEAL_URI       a PKCS#11 URI (no PIN) to register as a seal key and remove
//   SEING_UNNUMBERED_PES "N title": a PES dossier, signed by the maire, whose file S²LOW holds
//                        under transaction N while the service does not know N
//   CHROMIUM             the browser binary (default /usr/bin/chromium)
// Prints one line per scenario and "N passed, N failed"; exits non-zero on any failure.

import assert from "node:assert/strict";
import { readdir, readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.SEING_URL;
const siren = process.env.SEING_SIREN;
const financeToken = process.env.SEING_FINANCE_TOKEN;
const pesDir = process.env.SEING_PES_DIR;
const shots = process.env.SEING_SCREENSHOTS;
const [otherSiren, otherLogin, otherPassword] = (process.env.SEING_OTHER_TENANT || "").split(" ");
const signPin = process.env.SEING_SIGN_PIN;
const agentPin = process.env.SEING_AGENT_PIN;
const signedDir = process.env.SEING_SIGNED_DIR;
const agentSigner = process.env.SEING_AGENT_SIGNER;
const agentUrl = process.env.SEING_AGENT_URL;
const trustCrl = process.env.SEING_TRUST_CRL;
const sealUri = process.env.SEING_SEAL_URI;
const unnumberedPes = process.env.SEING_UNNUMBERED_PES;
for (const [name, value] of Object.entries({ SEING_URL: base, SEING_SIREN: siren, SEING_FINANCE_TOKEN: financeToken, SEING_PES_DIR: pesDir, SEING_SCREENSHOTS: shots, SEING_TRUST_CRL: trustCrl, SEING_SEAL_URI: sealUri, SEING_UNNUMBERED_PES: unnumberedPes })) {
  if (!value) throw new Error(`${name} is required`);
}
await mkdir(shots, { recursive: true });

// --- the finance software, through the REST API ----------------------------------------------
async function asFinance(method, path, body) {
  const headers = { Authorization: `Bearer ${financeToken}` };
  if (body !== undefined && !(body instanceof FormData)) headers["Content-Type"] = "application/json";
  const response = await fetch(base + "/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const circuits = await asFinance("GET", "/circuits");
const pesCircuit = circuits.find((c) => c.template === "pes-bordereaux");
const desks = await asFinance("GET", "/desks");
const desk = (name) => desks.find((d) => d.name === name);
const pesFiles = (await readdir(pesDir)).filter((f) => f.endsWith(".xml")).sort();
// A PES dossier from the finance software, visaed by the finance desk: it waits for the maire.
async function pesDossier(file, title) {
  const form = new FormData();
  form.append("metadata", new Blob([JSON.stringify({
    title,
    circuit: pesCircuit.id,
    emitter_desk: desk("Finances").id,
  })], { type: "application/json" }));
  form.append("main", new Blob([await readFile(join(pesDir, file))], { type: "text/xml" }), file);
  const dossier = await asFinance("POST", "/dossiers", form);
  await asFinance("POST", `/dossiers/${dossier.id}/visa`, {});
  return dossier;
}
// The agent's dossiers are created once the batch is signed (they would join "tout sélectionner").
const agentFiles = agentPin ? pesFiles.slice(-2) : [];
const created = [];
for (const [i, file] of pesFiles.slice(0, pesFiles.length - agentFiles.length).entries()) {
  created.push(await pesDossier(file, `Mandats PES n° ${String(i + 1).padStart(2, "0")}`));
}
// The last one is rejected in the UI; the others are signed.
const toReject = created[created.length - 1];
const toSign = created.slice(0, -1);

// --- the browser ---------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--lang=fr-FR"],
});
let passed = 0;
let failed = 0;
async function scenario(name, run) {
  const context = await browser.newContext({ locale: "fr-FR", viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    await run(page, context);
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}\n${error.stack}`);
    await page.screenshot({ path: join(shots, `FAILED-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
  } finally {
    await context.close();
  }
}

async function login(page, who, password = `demo-${who}-2026`, tenant = siren) {
  await page.goto(base + "/connexion");
  await page.getByLabel("SIREN de la collectivité").fill(tenant);
  await page.getByLabel("Identifiant").fill(who);
  await page.getByLabel("Mot de passe").fill(password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL(/\/bureau/);
}

async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === "seing_session")?.value;
}

function tab(page, label) {
  return page.getByRole("navigation", { name: "Onglets du bureau" }).getByRole("link", { name: new RegExp("^" + label) });
}

async function count(page, label) {
  return Number(await tab(page, label).locator(".count").textContent());
}

await scenario("login page, then the maire's bureau with its counters", async (page) => {
  await page.goto(base + "/");
  await page.waitForURL(/\/connexion/);
  await page.screenshot({ path: join(shots, "connexion.png") });
  await login(page, "maire");
  await assert.doesNotReject(page.getByRole("heading", { name: "Bureau Maire" }).waitFor());
  assert.equal(await count(page, "À traiter"), created.length);
  assert.equal(await page.locator('input[name="dossier"]').count(), created.length);
  await page.screenshot({ path: join(shots, "bureau-maire.png"), fullPage: true });
  // Text filter: only one dossier matches its number.
  await page.getByLabel("Titre contient").fill("n° 03");
  await page.getByRole("button", { name: "Filtrer" }).click();
  await page.waitForURL(/q=/);
  assert.equal(await page.locator("table.list tbody tr").count(), 1);
  assert.equal(await count(page, "À traiter"), 1);
});

await scenario("a PES dossier shows the table of its bordereaux", async (page) => {
  await login(page, "maire");
  await page.getByRole("link", { name: "Mandats PES n° 01" }).click();
  await page.getByRole("heading", { name: "Mandats PES n° 01" }).waitFor();
  const table = page.locator("table.pes");
  await table.waitFor();
  const headers = await table.locator("thead th").allTextContents();
  for (const h of ["Exercice", "Numéro", "Type", "Nombre de pièces", "Montant"]) assert.ok(headers.includes(h), headers.join("|"));
  assert.ok(await table.locator("tbody tr").count() >= 2);
  assert.match(await table.locator("[data-total]").textContent(), /€/);
  assert.equal(await page.locator('.circuit [aria-current="step"]').count(), 1);
  assert.match(await page.locator('.circuit [aria-current="step"]').textContent(), /Signature/);
  await page.screenshot({ path: join(shots, "dossier-pes.png"), fullPage: true });
  await page.setViewportSize({ width: 820, height: 1180 });
  await page.screenshot({ path: join(shots, "dossier-pes-tablette.png"), fullPage: true });
});

await scenario("the maire asks the DGS for an opinion; the DGS answers it", async (page, context) => {
  await login(page, "maire");
  await page.goto(`${base}/dossiers/${toSign[1].id}`);
  await page.getByText("Demander un avis", { exact: true }).click();
  await page.getByLabel("Bureau consulté").selectOption({ label: "DGS" });
  await page.getByLabel("Question").fill("Les crédits sont-ils ouverts ?");
  await page.getByRole("button", { name: "Demander l'avis" }).click();
  await page.getByText("Demande d'avis envoyée.").waitFor();
  await context.clearCookies();
  await login(page, "dgs");
  await page.getByRole("link", { name: toSign[1].title }).click();
  await page.getByText("Les crédits sont-ils ouverts ?").first().waitFor();
  await page.getByLabel("Votre avis").fill("Oui, chapitre 011.");
  await page.getByRole("button", { name: "Donner mon avis" }).click();
  await page.getByText("Avis donné.").waitFor();
  await page.locator(".notes").getByText("Oui, chapitre 011.").waitFor();
  assert.equal(await page.getByLabel("Votre avis").count(), 0);
});

await scenario("the maire rejects a dossier with a reason; the emitter sees it in Rejetés", async (page, context) => {
  await login(page, "maire");
  await page.goto(`${base}/dossiers/${toReject.id}`);
  await page.getByText("Rejeter", { exact: true }).click();
  await page.getByLabel("Motif du rejet (obligatoire)").fill("Montants à vérifier avec la trésorerie");
  await page.getByRole("button", { name: "Rejeter le dossier" }).click();
  await page.getByText("Dossier rejeté").waitFor();
  await page.getByRole("cell", { name: "Montants à vérifier avec la trésorerie" }).waitFor();
  await context.clearCookies();
  await login(page, "finances");
  assert.equal(await count(page, "Rejetés"), 1);
  await tab(page, "Rejetés").click();
  await page.getByRole("link", { name: toReject.title }).waitFor();
  await page.screenshot({ path: join(shots, "bureau-finances-rejetes.png"), fullPage: true });
});

await scenario("session fixation: login drops the planted id and renews it", async (page, context) => {
  const url = new URL(base);
  await context.addCookies([{ name: "seing_session", value: "planted-by-an-attacker", domain: url.hostname, path: "/" }]);
  await login(page, "maire");
  const first = await sessionCookie(context);
  assert.ok(first && first !== "planted-by-an-attacker");
  await login(page, "maire");
  const second = await sessionCookie(context);
  assert.notEqual(second, first);
  const old = await fetch(base + "/api/v1/session", { headers: { Cookie: `seing_session=${first}` } });
  assert.equal(old.status, 401, "the session before the second login must be dead");
});

await scenario("CSRF: a form posted without the session's token is refused and changes nothing", async (page) => {
  await login(page, "maire");
  const target = toSign[0];
  for (const form of [{ reason: "forgé" }, { reason: "forgé", csrf: "not-the-token" }]) {
    const response = await page.request.post(`${base}/dossiers/${target.id}/rejeter`, { form, maxRedirects: 0 });
    assert.equal(response.status(), 403);
  }
  const state = await page.request.get(`${base}/api/v1/dossiers/${target.id}`);
  assert.equal((await state.json()).state, "pending");
});

await scenario("another authority's dossier answers 404", async (page) => {
  assert.ok(otherSiren, "SEING_OTHER_TENANT is required");
  await login(page, otherLogin, otherPassword, otherSiren);
  const response = await page.goto(`${base}/dossiers/${toSign[0].id}`);
  assert.equal(response.status(), 404);
  await page.getByRole("heading", { name: "Introuvable" }).waitFor();
  assert.equal((await page.goto(`${base}/pas-une-page`)).status(), 404);
  await page.getByRole("heading", { name: "Introuvable" }).waitFor();
});

await scenario("a desk the user does not hold is refused", async (page) => {
  await login(page, "maire");
  const response = await page.goto(`${base}/bureau?bureau=${desk("DRH").id}`);
  assert.equal(response.status(), 403);
  await page.getByText("vous ne détenez pas ce bureau").waitFor();
});

await scenario("absences and administration pages; the delegate opens the absent desk", async (page, context) => {
  await login(page, "admin");
  await page.goto(base + "/absences");
  await page.getByLabel("Bureau absent").selectOption({ label: "Maire" });
  await page.getByLabel("Bureau remplaçant").selectOption({ label: "DGS" });
  await page.getByLabel("Dernier jour").fill("2099-12-31");
  await page.getByRole("button", { name: "Déclarer l'absence" }).click();
  await page.getByRole("cell", { name: "en cours" }).waitFor();
  await page.screenshot({ path: join(shots, "absences.png"), fullPage: true });
  await page.goto(base + "/administration");
  await page.getByRole("heading", { name: "Jetons d'API" }).waitFor();
  await page.getByRole("cell", { name: "Clé du maire", exact: true }).waitFor();
  await page.getByRole("cell", { name: "clé de Claire Martin, maire" }).waitFor();
  await page.screenshot({ path: join(shots, "administration.png"), fullPage: true });
  // The DGS now holds the maire's desk through the delegation: the switcher offers it.
  await context.clearCookies();
  await login(page, "dgs");
  await page.getByLabel("Bureau affiché").selectOption({ label: "Maire (délégation)" });
  await page.getByRole("button", { name: "Changer" }).click();
  await page.getByRole("heading", { name: "Bureau Maire (délégation)" }).waitFor();
  assert.equal(await count(page, "À traiter"), created.length - 1);
});

// Rows of a table in the section titled `title` of the administration page.
function adminRows(page, title) {
  return page.getByRole("region", { name: title }).locator("table.list tbody tr");
}

await scenario("administration: webhooks created with the keyboard, secret shown once, refused and deleted", async (page) => {
  await login(page, "admin");
  await page.goto(base + "/administration");
  const hooks = page.getByRole("region", { name: "Webhooks" });
  const before = await adminRows(page, "Webhooks").count();
  // Keyboard only: type the URL, Tab to the first event, tick it with Space, Enter submits.
  await hooks.getByLabel("Adresse de réception").focus();
  await page.keyboard.type("https://finances.example.fr/seing/evenements");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.value), "dossier.created");
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.value), "dossier.signed");
  await page.keyboard.press("Space");
  await hooks.getByLabel("Adresse de réception").focus();
  await page.keyboard.press("Enter");
  await page.getByText("Webhook créé.").waitFor();
  const secret = await page.locator("[data-secret]").textContent();
  assert.match(secret, /^whsec_/);
  await page.screenshot({ path: join(shots, "administration-webhook-secret.png"), fullPage: true });
  assert.equal(await adminRows(page, "Webhooks").count(), before + 1);
  await hooks.getByRole("cell", { name: "dossier.created, dossier.signed" }).waitFor();
  // Shown once: the page, opened again, no longer holds it.
  await page.goto(base + "/administration");
  assert.equal(await page.locator("[data-secret]").count(), 0);
  assert.ok(!(await page.content()).includes(secret));
  // Refused in the form (the browser accepts the URL, the engine does not): nothing stored.
  await hooks.getByLabel("Adresse de réception").fill("ftp://finances.example.fr/seing");
  await hooks.getByRole("button", { name: "Créer le webhook" }).click();
  await hooks.getByRole("alert").waitFor();
  assert.match(await hooks.getByRole("alert").textContent(), /Webhook refusé : l'adresse doit commencer par http\(s\):\/\//);
  assert.equal(await hooks.getByLabel("Adresse de réception").inputValue(), "ftp://finances.example.fr/seing");
  assert.equal(await adminRows(page, "Webhooks").count(), before + 1);
  await page.screenshot({ path: join(shots, "administration-webhook-refuse.png"), fullPage: true });
  // An unknown event, forged past the checkboxes, is refused too.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const forged = await page.request.post(base + "/administration/webhooks", { form: { csrf, url: "https://x.example.fr/", events: "dossier.vole" } });
  assert.equal(forged.status(), 422);
  assert.match(await forged.text(), /événement inconnu « dossier.vole »/);
  // Deleted after a confirmation.
  page.once("dialog", (dialog) => dialog.accept());
  await hooks.getByRole("button", { name: "Supprimer le webhook https://finances.example.fr/seing/evenements" }).click();
  await page.getByText("Webhook supprimé.").waitFor();
  assert.equal(await adminRows(page, "Webhooks").count(), before);
  const listed = await page.request.get(base + "/api/v1/webhooks");
  assert.equal((await listed.json()).length, before);
});

await scenario("administration: a circuit made from a template, then edited; a taken name or a role without a desk is refused", async (page) => {
  await login(page, "admin");
  await page.goto(base + "/administration");
  const circuits = page.getByRole("region", { name: "Circuits" });
  const before = await adminRows(page, "Circuits").count();
  const fill = async (name) => {
    await circuits.locator("summary", { hasText: "Visa puis signature" }).click();
    const form = page.getByRole("form", { name: "Nouveau circuit : Visa puis signature" });
    if (name) await form.getByLabel("Nom du circuit").fill(name);
    await form.getByLabel("Bureau « viseur »").selectOption({ label: "DGS" });
    await form.getByLabel("Bureau « signataire »").selectOption({ label: "Maire" });
    await form.getByRole("button", { name: "Créer le circuit" }).click();
  };
  // The template's title is the default name, already taken by the demo circuit: refused in the form.
  await fill(null);
  await circuits.getByRole("alert").waitFor();
  assert.match(await circuits.getByRole("alert").textContent(), /Circuit refusé : nom de circuit déjà utilisé/);
  assert.equal(await adminRows(page, "Circuits").count(), before);
  // Renamed, it is created and listed with its steps.
  await page.goto(base + "/administration");
  await fill("Visa DGS puis maire");
  await page.getByText("Circuit « Visa DGS puis maire » créé.").waitFor();
  assert.equal(await adminRows(page, "Circuits").count(), before + 1);
  await circuits.getByRole("cell", { name: "Visa DGS puis maire" }).waitFor();
  await page.screenshot({ path: join(shots, "administration-circuit.png"), fullPage: true });
  // A role given no desk (forged past the required select) is refused, nothing stored.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const forged = await page.request.post(base + "/administration/circuits", {
    form: { csrf, template: "visa-signature", name: "Sans bureau", "role.viseur": "aucun" },
  });
  assert.equal(forged.status(), 422);
  assert.match(await forged.text(), /choisissez le bureau « viseur »/);
  const listed = await page.request.get(base + "/api/v1/circuits");
  assert.equal((await listed.json()).filter((c) => c.name === "Sans bureau").length, 0);

  // Edited: a name already taken is refused in its own form, which stays open with what was
  // typed; then renamed, its signer moved to another desk.
  await page.goto(base + "/administration");
  const edit = (name) => circuits.getByRole("form", { name: `Modifier le circuit ${name}` });
  const open = async (name) => {
    // A closed <details> hides its form from roles: found by its label attribute.
    const hidden = page.locator(`form[aria-label="Modifier le circuit ${name}"]`);
    await circuits.locator("details.edit", { has: hidden }).locator("summary").click();
    return edit(name);
  };
  let form = await open("Visa DGS puis maire");
  assert.equal(await form.getByLabel("Bureau « signataire »").inputValue(), desk("Maire").id);
  await form.getByLabel("Nom du circuit").fill("Demande de congés");
  await form.getByRole("button", { name: "Enregistrer le circuit" }).click();
  await circuits.getByRole("alert").waitFor();
  assert.match(await circuits.getByRole("alert").textContent(), /Circuit refusé : nom de circuit déjà utilisé/);
  form = edit("Visa DGS puis maire");
  assert.ok(await form.isVisible(), "the refused form stays open");
  assert.equal(await form.getByLabel("Nom du circuit").inputValue(), "Demande de congés");
  await circuits.getByRole("cell", { name: "Visa DGS puis maire", exact: true }).waitFor();
  await form.getByLabel("Nom du circuit").fill("Visa DGS puis DRH");
  await form.getByLabel("Bureau « signataire »").selectOption({ label: "DRH" });
  await form.getByRole("button", { name: "Enregistrer le circuit" }).click();
  await page.getByText("Circuit « Visa DGS puis DRH » modifié.").waitFor();
  assert.equal(await adminRows(page, "Circuits").count(), before + 1);
  form = await open("Visa DGS puis DRH");
  assert.equal(await form.getByLabel("Bureau « signataire »").inputValue(), desk("DRH").id);
  assert.equal(await form.getByLabel("Bureau « viseur »").inputValue(), desk("DGS").id);
  const edited = (await (await page.request.get(base + "/api/v1/circuits")).json()).find((c) => c.name === "Visa DGS puis DRH");
  assert.ok(JSON.stringify(edited.spec).includes(desk("DRH").id), JSON.stringify(edited));
  assert.ok(!JSON.stringify(edited.spec).includes(desk("Maire").id), JSON.stringify(edited));
  await page.screenshot({ path: join(shots, "administration-circuit-modifie.png"), fullPage: true });
});

await scenario("administration: trust anchors uploaded as PEM, refused when unreadable, removed", async (page) => {
  await login(page, "admin");
  await page.goto(base + "/administration");
  const trust = page.getByRole("region", { name: "Autorités de confiance" });
  const before = await adminRows(page, "Autorités de confiance").count();
  await trust.getByLabel("Certificat d'autorité ou liste de révocation (fichier PEM)").setInputFiles({
    name: "faux.pem", mimeType: "application/x-pem-file",
    buffer: Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
  });
  await trust.getByRole("button", { name: "Ajouter au magasin de confiance" }).click();
  await trust.getByRole("alert").waitFor();
  assert.match(await trust.getByRole("alert").textContent(), /Ajout refusé : certificat illisible/);
  assert.equal(await adminRows(page, "Autorités de confiance").count(), before);
  await trust.getByLabel("Certificat d'autorité ou liste de révocation (fichier PEM)").setInputFiles(trustCrl);
  await trust.getByRole("button", { name: "Ajouter au magasin de confiance" }).click();
  await page.getByText("1 entrée(s) ajoutée(s) au magasin de confiance.").waitFor();
  assert.equal(await adminRows(page, "Autorités de confiance").count(), before + 1);
  const crlRow = adminRows(page, "Autorités de confiance").filter({ hasText: "Liste de révocation" });
  assert.equal(await crlRow.count(), 1);
  await page.screenshot({ path: join(shots, "administration-confiance.png"), fullPage: true });
  page.once("dialog", (dialog) => dialog.accept());
  await crlRow.getByRole("button", { name: /^Retirer Liste de révocation/ }).click();
  await page.getByText("Entrée retirée du magasin de confiance.").waitFor();
  assert.equal(await adminRows(page, "Autorités de confiance").count(), before);
  const store = await (await page.request.get(base + "/api/v1/trust-anchors")).json();
  assert.equal(store.filter((e) => e.kind === "crl").length, 0);
  // The REST API removes with the same engine function: 204, then 404 for the same id.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const headers = { "X-CSRF-Token": csrf };
  const added = await page.request.post(base + "/api/v1/trust-anchors", { headers, data: { pem: await readFile(trustCrl, "utf8") } });
  assert.equal(added.status(), 201);
  const [entry] = await added.json();
  assert.equal((await page.request.delete(`${base}/api/v1/trust-anchors/${entry.id}`, { headers })).status(), 204);
  assert.equal((await page.request.delete(`${base}/api/v1/trust-anchors/${entry.id}`, { headers })).status(), 404);
});

await scenario("administration: a seal key of the server's module added, refused with a PIN or an unknown owner, removed", async (page) => {
  await login(page, "admin");
  await page.goto(base + "/administration");
  const keys = page.getByRole("region", { name: "Clés du serveur (cachet, clés des élus)" });
  const before = await adminRows(page, "Clés du serveur (cachet, clés des élus)").count();
  await keys.getByLabel("Libellé").fill("Cachet de la mairie");
  await keys.getByLabel("URI PKCS#11 (sans code PIN)").fill(sealUri + "&pin-value=1234");
  await keys.getByRole("radio", { name: "Cachet de la collectivité" }).check();
  await keys.getByRole("button", { name: "Ajouter la clé" }).click();
  await keys.getByRole("alert").waitFor();
  assert.match(await keys.getByRole("alert").textContent(), /Clé refusée : l'URI ne doit contenir aucun code PIN/);
  assert.equal(await keys.getByLabel("Libellé").inputValue(), "Cachet de la mairie");
  assert.equal(await keys.getByLabel("URI PKCS#11 (sans code PIN)").inputValue(), "", "the PIN is not shown back");
  assert.ok(!(await page.content()).includes("pin-value=1234"));
  assert.equal(await adminRows(page, "Clés du serveur (cachet, clés des élus)").count(), before);
  await page.screenshot({ path: join(shots, "administration-cle-refusee.png"), fullPage: true });
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const forged = await page.request.post(base + "/administration/cles", {
    form: { csrf, label: "Clé fantôme", uri: sealUri, usage: "user", owner: "00000000-0000-4000-8000-000000000000" },
  });
  assert.equal(forged.status(), 422);
  assert.match(await forged.text(), /introuvable/);
  await keys.getByLabel("URI PKCS#11 (sans code PIN)").fill(sealUri);
  await keys.getByRole("button", { name: "Ajouter la clé" }).click();
  await page.getByText("Clé du serveur ajoutée.").waitFor();
  await keys.getByRole("cell", { name: "Cachet de la mairie", exact: true }).waitFor();
  await keys.getByRole("cell", { name: "cachet de la collectivité" }).waitFor();
  assert.equal(await adminRows(page, "Clés du serveur (cachet, clés des élus)").count(), before + 1);
  const registered = await (await page.request.get(base + "/api/v1/server-keys")).json();
  assert.ok(registered.some((k) => k.label === "Cachet de la mairie" && k.usage === "seal"));
  assert.ok(!registered.some((k) => k.label === "Clé fantôme"));
  await page.screenshot({ path: join(shots, "administration-cles.png"), fullPage: true });
  page.once("dialog", (dialog) => dialog.accept());
  await keys.getByRole("button", { name: "Retirer la clé Cachet de la mairie" }).click();
  await page.getByText("Clé du serveur retirée.").waitFor();
  assert.equal(await adminRows(page, "Clés du serveur (cachet, clés des élus)").count(), before);
  const gone = registered.find((k) => k.label === "Cachet de la mairie");
  assert.equal((await page.request.delete(`${base}/api/v1/server-keys/${gone.id}`, { headers: { "X-CSRF-Token": csrf } })).status(), 404);
});

await scenario("administration: a PES whose S²LOW answer was lost is given its transaction number; a wrong one is refused", async (page) => {
  const [transaction, ...words] = unnumberedPes.split(" ");
  const title = words.join(" ");
  await login(page, "admin");
  // The service's worker sends it shortly after starting, and S²LOW answers « doublon ».
  const name = "PES transmis sans numéro de transaction S²LOW";
  const section = page.getByRole("region", { name });
  for (let tries = 0; !(await section.count()); tries++) {
    assert.ok(tries < 60, "the PES refused as a duplicate is listed within 30 s");
    await page.waitForTimeout(500);
    await page.goto(base + "/administration");
  }
  const link = section.getByRole("link", { name: title });
  const dossierUrl = base + (await link.getAttribute("href"));
  assert.match(await section.textContent(), /PES_titres_77\.xml/);
  assert.match(await section.textContent(), /SHA-1 [0-9a-f]{40}/);
  // The dossier itself says what is missing, and where to give it.
  await page.goto(dossierUrl);
  assert.match(await page.locator("#unnumbered").textContent(), /S²LOW a reçu ce PES, mais sa réponse s'est perdue.*Un administrateur doit saisir ce numéro dans la page Administration/s);
  await page.locator("#unnumbered").getByRole("link", { name: "Administration" }).click();
  await page.waitForURL(/\/administration$/);
  const input = section.getByLabel("Numéro de transaction S²LOW de PES_titres_77.xml");
  // A number S²LOW shows no PES under: refused in the form, nothing recorded.
  await input.fill("999999");
  await section.getByRole("button", { name: "Enregistrer" }).click();
  await section.getByRole("alert").waitFor();
  assert.match(await section.getByRole("alert").textContent(), /Numéro refusé : S²LOW ne donne pas de PES pour la transaction 999999/);
  assert.equal(await input.inputValue(), "999999");
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  await page.screenshot({ path: join(shots, "administration-pes-sans-numero.png"), fullPage: true });
  // Not a number at all.
  await input.fill("12a");
  await input.evaluate((el) => el.removeAttribute("pattern"));
  await section.getByRole("button", { name: "Enregistrer" }).click();
  await section.getByRole("alert").waitFor();
  assert.match(await section.getByRole("alert").textContent(), /un numéro de transaction S²LOW est un nombre/);
  // The number found in the S²LOW console: checked against the file S²LOW holds, recorded.
  await input.fill(transaction);
  await input.press("Enter");
  await page.getByText(`PES rapproché de la transaction S²LOW ${transaction} : son acquittement sera suivi.`).waitFor();
  assert.equal(await page.getByRole("region", { name }).count(), 0);
  const listed = await (await page.request.get(base + "/api/v1/connectors/helios/unnumbered")).json();
  assert.deepEqual(listed, []);
  // Through the REST API: the number is kept, a software's token is not an administrator.
  const dossierId = dossierUrl.split("/").pop();
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const again = await page.request.post(`${base}/api/v1/connectors/helios/unnumbered/${dossierId}`, { headers: { "X-CSRF-Token": csrf }, data: { transaction: Number(transaction) } });
  assert.equal(again.status(), 409);
  assert.match((await again.json()).detail, new RegExp(`déjà son numéro de transaction S²LOW : ${transaction}`));
  const software = await fetch(`${base}/api/v1/connectors/helios/unnumbered`, { headers: { Authorization: `Bearer ${financeToken}` } });
  assert.equal(software.status, 403);
  await page.goto(dossierUrl);
  const journal = page.getByRole("region", { name: "Journal" });
  await journal.getByRole("cell", { name: "Numéro de transaction S²LOW saisi" }).waitFor();
  assert.equal(await page.locator("#unnumbered").count(), 0);
});

await scenario("a tab of 110 dossiers is paged by 50, back and forth, counters and filters kept across pages", async (page) => {
  // 110 dossiers waiting for the finance desk's visa, found by the word « pagination ».
  for (let i = 1; i <= 110; i++) {
    const form = new FormData();
    form.append("metadata", new Blob([JSON.stringify({
      title: `Lot pagination n° ${String(i).padStart(3, "0")}`, circuit: pesCircuit.id, emitter_desk: desk("Finances").id,
    })], { type: "application/json" }));
    form.append("main", new Blob([await readFile(join(pesDir, pesFiles[0]))], { type: "text/xml" }), "PES.xml");
    await asFinance("POST", "/dossiers", form);
  }
  await login(page, "finances");
  await page.getByLabel("Titre contient").fill("pagination");
  await page.getByRole("button", { name: "Filtrer" }).click();
  await page.waitForURL(/q=pagination/);
  assert.equal(await count(page, "À traiter"), 110);
  const rows = page.locator("table.list tbody tr");
  const pager = page.getByRole("navigation", { name: "Pages de l'onglet" });
  const link = (name) => pager.getByRole("link", { name });
  const titles = () => rows.locator("td a").allTextContents();
  assert.equal(await rows.count(), 50);
  assert.match(await pager.textContent(), /Dossiers 1 à 50 sur 110/);
  assert.equal(await link("Page précédente").count(), 0);
  assert.equal(await link("Première page").count(), 0);
  const first = await titles();
  await page.screenshot({ path: join(shots, "bureau-pagination.png"), fullPage: true });
  await link("Page suivante").click();
  await page.waitForURL(/apres=/);
  assert.match(page.url(), /q=pagination/);
  assert.match(await pager.textContent(), /Dossiers 51 à 100 sur 110/);
  // The page before is the first: one link to it, not two.
  assert.equal(await link("Page précédente").count(), 1);
  assert.equal(await link("Première page").count(), 0);
  const second = await titles();
  await link("Page suivante").click();
  await pager.getByText("Dossiers 101 à 110 sur 110").waitFor();
  assert.match(page.url(), /q=pagination/);
  assert.equal(await count(page, "À traiter"), 110);
  assert.equal(await rows.count(), 10);
  assert.equal(await link("Page suivante").count(), 0);
  const third = await titles();
  assert.equal(new Set([...first, ...second, ...third]).size, 110, "every dossier once across the pages");
  assert.ok(third.every((t) => t.includes("pagination")));
  await link("Page précédente").click();
  await pager.getByText("Dossiers 51 à 100 sur 110").waitFor();
  assert.deepEqual(await titles(), second);
  await link("Page précédente").click();
  await pager.getByText("Dossiers 1 à 50 sur 110").waitFor();
  assert.deepEqual(await titles(), first);
  await link("Page suivante").click();
  await link("Page suivante").click();
  await pager.getByText("Dossiers 101 à 110 sur 110").waitFor();
  await link("Première page").click();
  await pager.getByText("Dossiers 1 à 50 sur 110").waitFor();
  assert.equal(await rows.count(), 50);
  // A forged cursor is a clear refusal, not a crash.
  assert.equal((await page.goto(`${base}/bureau?apres=pas-un-curseur`)).status(), 422);
  await page.getByText("lien de page invalide").waitFor();
});

if (signPin) {
  await scenario("batch: 15 PES dossiers signed with one PIN move to Traités", async (page) => {
    await login(page, "maire");
    await page.getByLabel("Tout sélectionner").check();
    // The rejected dossier is gone from the list; every remaining one is selected.
    const button = page.getByRole("button", { name: `Signer la sélection (${toSign.length})` });
    await button.click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("radio", { name: /Clé du serveur/ }).first().check();
    await dialog.getByLabel("Code PIN").fill(signPin);
    await page.screenshot({ path: join(shots, "signature-pin.png") });
    // Watch the rows: each one must turn « Signé » while later ones still wait.
    await page.evaluate(() => {
      window.seen = [];
      window.t0 = performance.now();
      const list = document.querySelector("[data-progress]");
      new MutationObserver(() => {
        const signed = list.querySelectorAll(".st.ok").length;
        if (window.seen[window.seen.length - 1]?.signed !== signed) window.seen.push({ signed, at: performance.now() });
      }).observe(list, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const started = Date.now();
    await dialog.getByRole("button", { name: "Signer", exact: true }).click();
    await dialog.locator(".st.ok").first().waitFor({ timeout: 60000 });
    await page.screenshot({ path: join(shots, "signature-progression.png") });
    await dialog.locator('[data-summary][data-signed]').waitFor({ timeout: 120000 });
    const wall = Date.now() - started;
    console.log(`# batch of ${toSign.length} dossiers signed in ${wall} ms (browser wall time)`);
    const seen = await page.evaluate(() => window.seen);
    const partial = seen.filter((s) => s.signed > 0 && s.signed < toSign.length);
    assert.ok(partial.length >= 3, `the rows turn « Signé » as the batch goes, not all at the end: ${JSON.stringify(seen)}`);
    const t0 = await page.evaluate(() => window.t0);
    console.log(`# first dossier shown signed after ${Math.round(seen.find((s) => s.signed > 0).at - t0)} ms, ${partial.length} intermediate states seen`);
    assert.equal(await dialog.locator("[data-summary]").getAttribute("data-signed"), String(toSign.length), await dialog.locator("[data-progress]").textContent());
    await page.screenshot({ path: join(shots, "signature-resultat.png") });
    await dialog.getByRole("button", { name: "Fermer et actualiser" }).click();
    await page.waitForLoadState("load");
    assert.equal(await count(page, "À traiter"), 0);
    // The batch, the dossier rejected earlier, and the PES signed before the test (SEING_UNNUMBERED_PES).
    assert.equal(await count(page, "Traités"), toSign.length + 2);
    await tab(page, "Traités").click();
    await page.screenshot({ path: join(shots, "bureau-maire-traites.png"), fullPage: true });
    await saveSigned(page, toSign);
  });
}

// Downloads the signed PES of each dossier for the oracle.
async function saveSigned(page, dossiers) {
    if (signedDir) {
      await mkdir(signedDir, { recursive: true });
      for (const dossier of dossiers) {
        const documents = await (await page.request.get(`${base}/api/v1/dossiers/${dossier.id}/documents`)).json();
        const signed = documents.find((d) => d.role === "signed");
        assert.ok(signed, `no signed document for ${dossier.title}`);
        const bytes = await (await page.request.get(`${base}/api/v1/dossiers/${dossier.id}/documents/${signed.id}`)).body();
        await writeFile(join(signedDir, `${dossier.id}.xml`), bytes);
      }
    }
}

if (agentPin) {
  await scenario("the agent answers only the seing origin", async () => {
    for (const origin of [undefined, "http://evil.example"]) {
      const response = await fetch(agentUrl + "/certificates", { headers: origin ? { Origin: origin } : {} });
      assert.equal(response.status, 403);
    }
  });

  await scenario("signing through seing agent and the workstation's token", async (page) => {
    const mine = [];
    for (const [i, file] of agentFiles.entries()) {
      mine.push(await pesDossier(file, `Mandats PES poste n° ${i + 1}`));
    }
    await login(page, "maire");
    for (const dossier of mine) {
      await page.getByLabel(`Sélectionner « ${dossier.title} »`).check();
    }
    await page.getByRole("button", { name: `Signer la sélection (${mine.length})` }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("radio", { name: new RegExp("Certificat de mon poste : " + agentSigner) }).check();
    await dialog.getByLabel("Code PIN").fill(agentPin);
    await page.screenshot({ path: join(shots, "signature-agent.png") });
    await dialog.getByRole("button", { name: "Signer", exact: true }).click();
    await dialog.locator("[data-summary][data-signed]").waitFor({ timeout: 120000 });
    assert.equal(await dialog.locator("[data-summary]").getAttribute("data-signed"), String(mine.length), await dialog.locator("[data-progress]").textContent());
    await saveSigned(page, mine);
  });
}

// Last: the maire's counters checked above are not disturbed by this rejection.
await scenario("the emitter corrects a rejected dossier and sends it again; a draft is corrected and deleted", async (page, context) => {
  const dossier = await pesDossier(pesFiles[0], "Mandats PES à corriger");
  await login(page, "maire");
  await page.goto(`${base}/dossiers/${dossier.id}`);
  await page.getByText("Rejeter", { exact: true }).click();
  await page.getByLabel("Motif du rejet (obligatoire)").fill("Indiquer le numéro de bordereau");
  await page.getByRole("button", { name: "Rejeter le dossier" }).click();
  await page.getByText("Dossier rejeté").waitFor();
  // Only the emitter may recycle it.
  assert.equal(await page.getByRole("button", { name: "Remettre en brouillon pour le corriger" }).count(), 0);
  await context.clearCookies();
  await login(page, "finances");
  await page.goto(`${base}/dossiers/${dossier.id}`);
  const why = page.locator("#rejection");
  assert.match(await why.textContent(), /Rejeté par un bureau du circuit, à l'étape 2 \(Signature\), le \d\d\/\d\d\/\d{4} \d\d:\d\d \(UTC\) :\s*Indiquer le numéro de bordereau/);
  await page.getByRole("button", { name: "Remettre en brouillon pour le corriger" }).click();
  await page.getByText("Dossier remis en brouillon").waitFor();
  assert.equal(await page.locator(".heading .badge").first().textContent(), "Brouillon");
  assert.equal(await page.locator("#rejection").count(), 0);
  const draft = page.getByRole("form", { name: "Corriger le brouillon" });
  // A name without a value is refused, nothing changes.
  await draft.getByLabel("Nom").fill("numero_bordereau");
  await draft.getByRole("button", { name: "Enregistrer", exact: true }).click();
  await page.getByText("une information ajoutée a un nom et une valeur").waitFor();
  await page.goto(`${base}/dossiers/${dossier.id}`);
  assert.equal((await asFinance("GET", `/dossiers/${dossier.id}`)).metadata.numero_bordereau, undefined);
  await draft.getByLabel("Nom").fill("numero_bordereau");
  await draft.getByLabel("Valeur").fill("41");
  await draft.getByRole("button", { name: "Enregistrer", exact: true }).click();
  await page.getByText("Brouillon enregistré.").waitFor();
  // Shown and offered as typed, not quoted.
  assert.equal(await draft.getByLabel("numero_bordereau").inputValue(), "41");
  await page.getByRole("region", { name: "Informations" }).getByText("41", { exact: true }).waitFor();
  await draft.getByLabel("numero_bordereau").fill("42");
  await page.screenshot({ path: join(shots, "dossier-brouillon.png"), fullPage: true });
  await draft.getByRole("button", { name: "Enregistrer et envoyer dans le circuit" }).click();
  await page.getByText("Dossier envoyé dans le circuit.").waitFor();
  assert.equal(await page.locator(".heading .badge").first().textContent(), "En cours");
  const resent = await asFinance("GET", `/dossiers/${dossier.id}`);
  assert.equal(resent.state, "pending");
  assert.equal(resent.current_step, 0, "the whole circuit runs again");
  assert.equal(resent.metadata.numero_bordereau, "42");
  assert.equal(resent.rejection, null);
  const journal = page.getByRole("region", { name: "Journal" });
  await journal.getByRole("cell", { name: "Remise en circuit" }).waitFor();

  // Through the REST API: a draft corrected then deleted; a dossier in its circuit is neither.
  const form = new FormData();
  form.append("metadata", new Blob([JSON.stringify({
    title: "Brouillon à supprimer", circuit: pesCircuit.id, emitter_desk: desk("Finances").id, submit: false,
  })], { type: "application/json" }));
  form.append("main", new Blob([await readFile(join(pesDir, pesFiles[0]))], { type: "text/xml" }), "PES.xml");
  const created = await asFinance("POST", "/dossiers", form);
  assert.equal(created.state, "draft");
  const patched = await asFinance("PATCH", `/dossiers/${created.id}`, { metadata: { objet: "Mandats de novembre" } });
  assert.equal(patched.metadata.objet, "Mandats de novembre");
  const call = (method, path, body) => fetch(base + "/api/v1" + path, {
    method, headers: { Authorization: `Bearer ${financeToken}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body),
  });
  assert.equal((await call("PATCH", `/dossiers/${dossier.id}`, { metadata: { objet: "x" } })).status, 409);
  assert.equal((await call("POST", `/dossiers/${dossier.id}/recycle`, {})).status, 409);
  assert.equal((await call("DELETE", `/dossiers/${dossier.id}`)).status, 409);
  assert.equal((await call("DELETE", `/dossiers/${created.id}`)).status, 204);
  assert.equal((await call("GET", `/dossiers/${created.id}`)).status, 404);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
