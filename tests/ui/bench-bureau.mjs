// Benchmark of the bureau page (run by scripts/bench-ui): fills the maire's bureau with
// SEING_DOSSIERS PES dossiers through the REST API (finance software token, then the finance
// visa), logs in as the maire and times SEING_ITERATIONS renders of /bureau (HTTP on loopback:
// server time plus a local round trip; the first page of 50 rows, the counters over every
// dossier). Prints the median and p99 in milliseconds.

import { readFile } from "node:fs/promises";

const base = process.env.SEING_URL;
const token = process.env.SEING_FINANCE_TOKEN;
const siren = process.env.SEING_SIREN;
const pes = await readFile(process.env.SEING_PES_FILE);
const dossiers = Number(process.env.SEING_DOSSIERS || 1000);
const iterations = Number(process.env.SEING_ITERATIONS || 200);

async function api(method, path, body, headers = {}) {
  const response = await fetch(base + "/api/v1" + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...headers },
    body,
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const circuit = (await api("GET", "/circuits")).find((c) => c.template === "pes-bordereaux");
const finances = (await api("GET", "/desks")).find((d) => d.name === "Finances");
const started = Date.now();
// A few requests in flight at once, as several finance clerks would send them.
let next = 0;
async function worker() {
  while (next < dossiers) {
    const i = next++;
    const form = new FormData();
    form.append("metadata", new Blob([JSON.stringify({ title: `Mandats n° ${i}`, circuit: circuit.id, emitter_desk: finances.id })], { type: "application/json" }));
    form.append("main", new Blob([pes], { type: "text/xml" }), `PES_${i}.xml`);
    const d = await api("POST", "/dossiers", form);
    await api("POST", `/dossiers/${d.id}/visa`, "{}", { "Content-Type": "application/json" });
  }
}
await Promise.all(Array.from({ length: 4 }, worker));
console.log(`# ${dossiers} dossiers created and visaed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const login = await fetch(base + "/api/v1/session", {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ tenant: siren, login: "maire", password: "demo-maire-2026" }),
});
const cookie = login.headers.get("set-cookie").split(";")[0];
const times = [];
let size = 0;
for (let i = 0; i < iterations + 5; i++) {
  const t0 = performance.now();
  const response = await fetch(base + "/bureau", { headers: { Cookie: cookie } });
  const html = await response.text();
  const t1 = performance.now();
  if (!response.ok) throw new Error(`GET /bureau: ${response.status}`);
  size = html.length;
  if (i >= 5) times.push(t1 - t0); // the first renders warm the caches
}
const last = await (await fetch(base + "/bureau", { headers: { Cookie: cookie } })).text();
const rows = last.split('name="dossier"').length - 1;
const counted = Number((last.match(/aria-label="(\d+) dossiers"/) || [])[1]);
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)];
console.log(`bureau of ${counted} dossiers (page of ${rows} rows, ${(size / 1024).toFixed(0)} KiB of HTML), ${iterations} renders: median ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms`);
