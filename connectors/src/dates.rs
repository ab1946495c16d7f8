//! The date forms the formats use: `YYYY-MM-DD` in XML, `YYYYMMDD` in @ctes file names.

use time::Date;
use time::macros::format_description;

use crate::{Error, Result};

/// Parses an `xsd:date` without time zone (`2018-01-15`).
pub(crate) fn parse_date(text: &str) -> Result<Date> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::Format(format!("date « {} » invalide : {e}", text.trim())))
}

/// `2018-01-15`.
pub(crate) fn format_date(date: Date) -> String {
    // Formatting a valid Date with these components cannot fail.
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// `20180115`.
pub(crate) fn compact_date(date: Date) -> String {
    date.format(format_description!("[year][month][day]"))
        .unwrap_or_default()
}
