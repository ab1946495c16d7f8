//! The OpenAPI document and a small, self-contained page that renders it (no CDN, works offline).

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json(json: Arc<String>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.as_str().to_owned(),
    )
}

/// `GET /api/v1/docs`: reads `openapi.json` and lists every operation with its parameters,
/// bodies and responses.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>seing — API</title>
<style>
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
details{border:1px solid #ddd;border-radius:4px;margin:.4rem 0;padding:.3rem .6rem}
summary{cursor:pointer}code,pre{font-family:ui-monospace,monospace;font-size:.9rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto}
.m{display:inline-block;min-width:4.5rem;font-weight:bold}
.get{color:#0a6}.post{color:#05a}.delete{color:#a00}.put,.patch{color:#a60}
</style></head><body>
<h1 id="title">seing — API</h1><p id="desc"></p>
<p>Document OpenAPI : <a href="openapi.json">openapi.json</a></p>
<div id="ops">Chargement…</div>
<script>
fetch('openapi.json').then(r => r.json()).then(doc => {
  const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
  document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
  document.getElementById('desc').textContent = doc.info.description || '';
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || 'autres';
      (byTag[tag] = byTag[tag] || []).push({path, method, op});
    }
  }
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += '<h2>' + esc(tag) + '</h2>';
    for (const {path, method, op} of ops) {
      html += '<details><summary><span class="m ' + method + '">' + method.toUpperCase() +
        '</span> <code>' + esc((doc.servers?.[0]?.url || '') + path) + '</code> — ' + esc(op.summary || '') + '</summary>';
      if (op.description) html += '<p>' + esc(op.description) + '</p>';
      if (op.parameters?.length) {
        html += '<p><b>Paramètres</b></p><ul>' + op.parameters.map(p =>
          '<li><code>' + esc(p.name) + '</code> (' + esc(p.in) + (p.required ? ', requis' : '') + ') ' + esc(p.description) + '</li>').join('') + '</ul>';
      }
      if (op.requestBody) {
        html += '<p><b>Corps</b></p><pre>' + esc(JSON.stringify(op.requestBody.content, null, 2)) + '</pre>';
      }
      html += '<p><b>Réponses</b></p><ul>' + Object.entries(op.responses || {}).map(([code, r]) =>
        '<li><code>' + esc(code) + '</code> ' + esc(r.description) + '</li>').join('') + '</ul></details>';
    }
  }
  if (doc.components?.schemas) {
    html += '<h2>Schémas</h2>' + Object.entries(doc.components.schemas).map(([name, s]) =>
      '<details><summary><code>' + esc(name) + '</code></summary><pre>' + esc(JSON.stringify(s, null, 2)) + '</pre></details>').join('');
  }
  document.getElementById('ops').innerHTML = html;
}).catch(e => { document.getElementById('ops').textContent = 'Impossible de lire openapi.json : ' + e; });
</script></body></html>
"#;
