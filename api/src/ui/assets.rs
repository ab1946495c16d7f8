//! The UI's stylesheet and script, embedded in the binary.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{UiResult, not_found};

/// The stylesheet.
const CSS: &str = include_str!("../../assets/seing.css");
/// The script: selection, batch signing (server key or local agent), small helpers.
const JS: &str = include_str!("../../assets/seing.js");

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> UiResult<Response> {
    let (body, media_type) = match file.as_str() {
        "seing.css" => (CSS, "text/css; charset=utf-8"),
        "seing.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(not_found()),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
