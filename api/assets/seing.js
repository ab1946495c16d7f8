// seing web UI: batch selection and signing (server-held key or the local `seing agent`),
// confirmation of removals.
// No framework, no outside script; every call carries the session's CSRF token.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  // Where `seing agent` listens on the élu's workstation (`seing serve --agent-port`).
  const AGENT = document.querySelector('meta[name="seing-agent"]')?.content || "http://127.0.0.1:7431";

  async function api(method, path, body) {
    const response = await fetch("/api/v1" + path, {
      method,
      credentials: "same-origin",
      headers: body === undefined
        ? { "X-CSRF-Token": csrf }
        : { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.detail || ("erreur " + response.status));
    }
    return data;
  }

  async function agent(method, path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), method === "GET" ? 1500 : 120000);
    try {
      const response = await fetch(AGENT + path, {
        method,
        signal: controller.signal,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        throw new Error(data.detail || data.error || ("agent : erreur " + response.status));
      }
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- selection in the bureau -------------------------------------------------------------
  const boxes = () => Array.from(document.querySelectorAll('input[name="dossier"]'));
  const all = document.querySelector("[data-select-all]");
  const signSelection = document.querySelector("[data-sign-selection]");
  function refreshCount() {
    const chosen = boxes().filter((b) => b.checked);
    document.querySelectorAll("[data-selected-count]").forEach((e) => { e.textContent = chosen.length; });
    if (signSelection) signSelection.disabled = chosen.length === 0;
    if (all) {
      all.checked = chosen.length > 0 && chosen.length === boxes().length;
      all.indeterminate = chosen.length > 0 && chosen.length < boxes().length;
    }
  }
  if (all) {
    all.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = all.checked; });
      refreshCount();
    });
  }
  boxes().forEach((b) => b.addEventListener("change", refreshCount));
  refreshCount();

  // --- removals ask first (the form's data-confirm text) ------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (event) => {
      if (!window.confirm(f.dataset.confirm)) event.preventDefault();
    });
  });

  // --- the signing dialog ------------------------------------------------------------------
  const dialog = document.getElementById("sign-dialog");
  if (!dialog) return;
  const form = dialog.querySelector("[data-sign-form]");
  const keyList = dialog.querySelector("[data-key-list]");
  const help = dialog.querySelector("[data-agent-help]");
  const pin = dialog.querySelector("[data-pin]");
  const progress = dialog.querySelector("[data-progress]");
  const summary = dialog.querySelector("[data-summary]");
  const confirm = dialog.querySelector("[data-confirm]");
  const cancel = dialog.querySelector("[data-cancel]");
  const bar = dialog.querySelector("[data-bar]");
  dialog.querySelectorAll("[data-origin]").forEach((e) => { e.textContent = location.origin; });
  dialog.querySelectorAll("[data-agent-listen]").forEach((e) => { e.textContent = AGENT.replace(/^http:\/\//, ""); });
  let selection = [];
  let finished = false;

  function row(dossier) {
    const li = document.createElement("li");
    li.dataset.dossier = dossier.id;
    const title = document.createElement("span");
    title.textContent = dossier.title;
    const status = document.createElement("span");
    status.className = "st";
    status.textContent = "En attente";
    li.append(title, status);
    return li;
  }
  function setStatus(id, text, kind) {
    const st = progress.querySelector('li[data-dossier="' + id + '"] .st');
    if (!st) return;
    st.textContent = text;
    st.className = "st" + (kind ? " " + kind : "");
  }

  async function loadKeys() {
    keyList.textContent = "";
    help.hidden = true;
    const choices = [];
    try {
      for (const key of await api("GET", "/server-keys")) {
        if (key.usage === "seal") continue;
        choices.push({ value: "server:" + key.id, label: "Clé du serveur : " + key.label });
      }
    } catch (e) { /* no server key for this user */ }
    try {
      const found = await agent("GET", "/certificates");
      for (const cert of found.certificates || []) {
        choices.push({ value: "agent:" + cert.id, label: "Certificat de mon poste : " + cert.label, cert });
      }
    } catch (e) {
      help.hidden = false;
    }
    if (choices.length === 0) {
      const p = document.createElement("p");
      p.className = "alert";
      p.textContent = "Aucun certificat disponible : pas de clé sur le serveur pour vous, et l'agent de signature de votre poste ne répond pas.";
      keyList.append(p);
    }
    const group = document.createElement("div");
    group.className = "keys";
    choices.forEach((choice, i) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "key";
      input.value = choice.value;
      input.checked = i === 0;
      if (choice.cert) input.dataset.chain = JSON.stringify(choice.cert.certificate_chain || []);
      label.append(input, document.createTextNode(" " + choice.label));
      group.append(label);
    });
    keyList.append(group);
    confirm.disabled = choices.length === 0;
  }

  function open(dossiers) {
    selection = dossiers;
    finished = false;
    dialog.querySelectorAll("[data-sign-count]").forEach((e) => { e.textContent = dossiers.length; });
    progress.textContent = "";
    dossiers.forEach((d) => progress.append(row(d)));
    summary.textContent = "";
    bar.hidden = true;
    pin.value = "";
    pin.disabled = false;
    confirm.hidden = false;
    cancel.textContent = "Annuler";
    dialog.showModal();
    pin.focus();
    loadKeys();
  }

  function report(results) {
    let signed = 0;
    const failed = [];
    for (const r of results) {
      if (r.status === "signed") {
        signed += 1;
        setStatus(r.dossier_id, "Signé", "ok");
      } else {
        failed.push(r);
        setStatus(r.dossier_id, "Échec : " + (r.error || r.reason || "refusé"), "fail");
      }
    }
    summary.textContent = signed + " dossier(s) signé(s), " + failed.length + " en échec.";
    summary.dataset.signed = String(signed);
    summary.dataset.failed = String(failed.length);
  }

  // The server opens its key once, then signs one dossier at a time and sends one JSON line
  // per dossier as soon as it is done: each row and the bar follow the batch live.
  async function signWithServer(keyId, code) {
    const ids = selection.map((d) => d.id);
    const response = await fetch("/signature-serveur", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/x-ndjson", "X-CSRF-Token": csrf },
      body: JSON.stringify({ dossier_ids: ids, key_id: keyId, pin: code }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.detail || ("erreur " + response.status));
    }
    const results = [];
    const progressed = () => {
      bar.value = results.length;
      const waiting = ids.filter((id) => !results.some((r) => r.dossier_id === id));
      if (waiting.length > 0) {
        setStatus(waiting[0], "Signature en cours…");
        summary.textContent = results.length + " / " + ids.length + " dossier(s) traité(s)…";
      }
    };
    ids.forEach((id) => setStatus(id, "En attente"));
    bar.max = ids.length;
    bar.hidden = false;
    progressed();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let end;
      while ((end = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, end).trim();
        buffered = buffered.slice(end + 1);
        if (!line) continue;
        const result = JSON.parse(line);
        results.push(result);
        if (result.status === "signed") {
          setStatus(result.dossier_id, "Signé", "ok");
        } else {
          setStatus(result.dossier_id, "Échec : " + (result.error || "refusé"), "fail");
        }
        progressed();
      }
    }
    const lost = ids.filter((id) => !results.some((r) => r.dossier_id === id));
    lost.forEach((id) => results.push({ dossier_id: id, status: "failed", error: "réponse interrompue : actualisez la page pour voir son état" }));
    report(results);
  }

  async function signWithAgent(certId, chain, code) {
    const batch = await api("POST", "/signature-batches", {
      dossier_ids: selection.map((d) => d.id),
      certificate_chain: chain,
    });
    const refused = (batch.refused || []).map((r) => ({ dossier_id: r.dossier_id, status: "failed", error: r.reason }));
    if (batch.items.length === 0) { report(refused); return; }
    selection.forEach((d) => {
      if (!refused.some((r) => r.dossier_id === d.id)) setStatus(d.id, "Signature sur votre poste…");
    });
    const signed = await agent("POST", "/sign", {
      certificate: certId,
      pin: code,
      items: batch.items.map((i) => ({
        item_id: i.item_id,
        data_to_sign: i.data_to_sign,
        digest_algorithm: i.digest_algorithm,
        signature_algorithm: i.signature_algorithm,
      })),
    });
    selection.forEach((d) => {
      if (!refused.some((r) => r.dossier_id === d.id)) setStatus(d.id, "Enregistrement…");
    });
    const answer = await api("POST", "/signature-batches/" + batch.batch_id + "/signatures", {
      items: signed.signatures,
    });
    report(refused.concat(answer.results || []));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (finished) { dialog.close(); return; }
    const chosen = keyList.querySelector('input[name="key"]:checked');
    if (!chosen || !pin.value) { summary.textContent = "Choisissez un certificat et saisissez le code PIN."; return; }
    const code = pin.value;
    pin.value = "";
    pin.disabled = true;
    confirm.disabled = true;
    selection.forEach((d) => setStatus(d.id, "Signature en cours…"));
    summary.textContent = "Signature de " + selection.length + " dossier(s) en cours…";
    try {
      const [kind, id] = chosen.value.split(/:(.*)/s);
      if (kind === "server") {
        await signWithServer(id, code);
      } else {
        await signWithAgent(id, JSON.parse(chosen.dataset.chain || "[]"), code);
      }
    } catch (e) {
      selection.forEach((d) => setStatus(d.id, "Non signé", "fail"));
      summary.textContent = "La signature a échoué : " + e.message;
      summary.dataset.failed = String(selection.length);
      summary.dataset.signed = "0";
    }
    finished = true;
    confirm.hidden = true;
    cancel.textContent = "Fermer et actualiser";
  });
  cancel.addEventListener("click", () => {
    dialog.close();
    if (finished) location.reload();
  });

  if (signSelection) {
    signSelection.addEventListener("click", () => {
      open(boxes().filter((b) => b.checked).map((b) => ({ id: b.value, title: b.dataset.title })));
    });
  }
  document.querySelectorAll("[data-sign-one]").forEach((button) => {
    button.addEventListener("click", () => open([{ id: button.dataset.signOne, title: button.dataset.title }]));
  });
})();
