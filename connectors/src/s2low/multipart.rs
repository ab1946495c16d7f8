//! `multipart/form-data` bodies (RFC 7578), the way S²LOW's PHP pages read their posts.

/// A form being built.
#[derive(Debug)]
pub(crate) struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    /// An empty form with a boundary that cannot occur in the parts (random, 128 bits).
    pub(crate) fn new() -> Self {
        Self {
            boundary: format!("seing-{}", uuid::Uuid::new_v4().simple()),
            body: Vec::new(),
        }
    }

    fn open(&mut self, disposition: &str) {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body
            .extend_from_slice(b"\r\nContent-Disposition: form-data; ");
        self.body.extend_from_slice(disposition.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    /// Adds a text field.
    pub(crate) fn text(mut self, name: &str, value: &str) -> Self {
        self.open(&format!("name=\"{}\"", quoted(name)));
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Adds a file field.
    pub(crate) fn file(mut self, name: &str, file_name: &str, bytes: &[u8]) -> Self {
        self.open(&format!(
            "name=\"{}\"; filename=\"{}\"",
            quoted(name),
            quoted(file_name)
        ));
        self.body
            .extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The `Content-Type` header value and the body.
    pub(crate) fn finish(mut self) -> (String, Vec<u8>) {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body.extend_from_slice(b"--\r\n");
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// A name or file name inside a quoted header parameter: quotes, backslashes and line breaks
/// would end it early, so they are replaced.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\r' | '\n' => '_',
            c => c,
        })
        .collect()
}
