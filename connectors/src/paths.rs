//! File names of the inputs.

use std::path::Path;

/// The last component of a path, as text (lossy for non-UTF-8 names).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
