//! Test resources for the API tests: where the specs are (`SEING_SPECS_DIR`), what a missing
//! one means (a skip, or a failure when `CI=true`), and PES files made from the real unsigned
//! sample.

use std::path::{Path, PathBuf};

/// True when the tests run with `CI=true` (a missing prerequisite then fails).
pub fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The path in `var`, else `default` under the crate; `None` (skipped, or a failure on CI) when
/// absent.
pub fn resource(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default));
    if path.exists() {
        return Some(path);
    }
    assert!(
        !on_ci(),
        "{var} not found at {} (required when CI=true)",
        path.display()
    );
    eprintln!("skipped: {var} not found at {}", path.display());
    None
}

/// The specs folder (`SEING_SPECS_DIR`).
pub fn specs() -> Option<PathBuf> {
    resource("SEING_SPECS_DIR", "../../shared/specs")
}

/// A PES of `count` bordereaux (numbered from `first`) made from the real unsigned sample.
pub fn pes(specs: &Path, count: usize, first: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(specs.join("pesv2/examples/PESALR1_unsigned.xml")).unwrap();
    let start = text.find("<Bordereau ").unwrap();
    let end = text.find("</Bordereau>").unwrap() + "</Bordereau>".len();
    let copies: String = (first..first + count)
        .map(|i| {
            text[start..end]
                .replace("ID2020020200727D013536\"", &format!("B{i}\""))
                .replace(
                    "<IdBord V=\"3536\"/>",
                    &format!("<IdBord V=\"{}\"/>", 100 + i),
                )
        })
        .collect();
    format!("{}{}{}", &text[..start], copies, &text[end..]).into_bytes()
}
