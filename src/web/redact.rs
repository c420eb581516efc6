//! What a message may show on the public page: no capabilities and no paths.
//!
//! Error messages are written for the user and may name the source directory or a file ("the
//! source /Volumes/Backup is missing"), or, by mistake somewhere, a capability. The public page
//! shows them with both hidden; the control page shows them whole.

/// `text` with every capability and every absolute or home-relative path replaced.
pub fn public_text(text: &str) -> String {
    hide_paths(&hide_caps(text))
}

/// Hides every `URI:...` capability, with any path written after it: the configuration's
/// [`tahoe_jobs_config::redact`], the project's one redaction.
pub use tahoe_jobs_config::redact as hide_caps;

/// Replaces words that look like paths (`/x`, `~/x`, `./x`, also inside quotes or brackets).
fn hide_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        out.push_str(&hide_word(word));
        let ws_end = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..ws_end]);
        rest = &tail[ws_end..];
    }
    out
}

fn hide_word(word: &str) -> String {
    let lead = word
        .find(|c: char| !matches!(c, '"' | '\'' | '(' | '[' | '<' | '`' | '='))
        .unwrap_or(word.len());
    let (open, body) = word.split_at(lead);
    let looks_like_path = body.starts_with('/')
        || body.starts_with("~/")
        || body.starts_with("./")
        || body.starts_with("../")
        || (body.contains('/') && !body.contains("://") && !body.starts_with("<capability>"));
    if !looks_like_path {
        return word.to_string();
    }
    // Keep closing punctuation so the sentence still reads.
    let trail_at = body
        .rfind(|c: char| {
            !matches!(
                c,
                '"' | '\'' | ')' | ']' | '>' | '`' | ',' | '.' | ':' | ';'
            )
        })
        .map_or(0, |i| i + 1);
    format!("{open}<path>{}", &body[trail_at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_hidden_all_of_them() {
        let s = public_text("linking URI:DIR2:aaa:bbb failed; also URI:CHK:ccc:ddd:3:10:99 gone");
        assert!(!s.contains("URI:"), "{s}");
        assert!(!s.contains("aaa"), "{s}");
        assert_eq!(
            public_text("x URI:DIR2:a/sub and \"URI:CHK:b\", done"),
            "x <capability> and \"<capability>\", done"
        );
        assert_eq!(hide_caps("URI:LIT:abc"), "<capability>");
    }

    #[test]
    fn paths_are_hidden_and_the_sentence_kept() {
        assert_eq!(
            public_text("the source /Volumes/Backup/Pictures is missing"),
            "the source <path> is missing"
        );
        // A name with a space keeps its last part: the heuristic works on words.
        assert_eq!(
            public_text("cannot read \"/home/me/a b.txt\": denied"),
            "cannot read \"<path> b.txt\": denied"
        );
        assert_eq!(public_text("(~/secret/file)."), "(<path>).");
        assert_eq!(public_text("in photos/2024"), "in <path>");
        assert_eq!(
            public_text("node at http://127.0.0.1:3456/ refused"),
            "node at http://127.0.0.1:3456/ refused"
        );
        assert_eq!(public_text("3 files uploaded"), "3 files uploaded");
    }
}
