//! File names of the inputs, and the temporary files that outputs are written through.

use std::path::Path;

/// The last component of a path, as text (lossy for non-UTF-8 names).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A temporary file in `dir`, to be renamed into place there once whole, created like an
/// ordinary file (mode 0666 less the umask) rather than with tempfile's private 0600: what
/// seing deposits is read by other programs (a transfer agent, the archive system).
pub(crate) fn staging_file(prefix: &str, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}
