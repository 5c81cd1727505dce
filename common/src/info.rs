//! Pieces of INFO that the shard and the proxy build the same way.

/// Whether INFO with `wanted` sections (lower-case) includes `section`; none means the
/// default sections, which here are all of them.
pub fn wants(wanted: &[String], section: &str) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default" || w == section)
}

/// Drops the blank line after the last section.
pub fn finish(mut text: String) -> String {
    while text.ends_with("\r\n\r\n") {
        text.truncate(text.len() - 2);
    }
    text
}
