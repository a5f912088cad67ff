//! An event's waiting-page settings (`page` of the event configuration): the sale's brand on
//! the page. The queue only stores and validates them; the gateway renders them.

use crate::error::QueueError;
use serde::{Deserialize, Serialize};

/// Longest `page.title`, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest `page.message`, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest `page.logo_url`, in bytes.
pub const MAX_LOGO_URL_BYTES: usize = 2048;
/// Largest `page.template`, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 32 * 1024;

/// The variables a `page.template` may use; `{{queue}}` (where the live widget goes) is
/// required exactly once.
pub const TEMPLATE_VARIABLES: [&str; 6] = [
    "title",
    "message",
    "logo_url",
    "accent_color",
    "lang",
    "queue",
];

/// `page` of an event: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    /// The page's heading and `<title>` (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A short text under the heading (plain text; line breaks are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The sale's logo: an absolute http(s) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// The brand colour, `#rrggbb`: buttons, progress bar and the band at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
    /// An HTML template for the page's body with `{{variable}}`s (see
    /// [`TEMPLATE_VARIABLES`]); no scripts, event-handler attributes or `javascript:` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Elements a template may not hold: scripts, and what can load or navigate on its own.
const FORBIDDEN_TAGS: [&str; 9] = [
    "<script", "<iframe", "<frame", "<object", "<embed", "<base", "<meta", "<link", "<form",
];

impl PageSettings {
    /// Checks lengths, the URL, the colour and the template; the error names the field.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |m: String| Err(QueueError::InvalidArgument(m));
        if let Some(t) = &self.title {
            if t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
                return bad(format!(
                    "page.title must be at most {MAX_TITLE_CHARS} characters, without control characters"
                ));
            }
        }
        if let Some(m) = &self.message {
            let ctl = m.chars().any(|c| c.is_control() && c != '\n');
            if m.chars().count() > MAX_MESSAGE_CHARS || ctl {
                return bad(format!(
                    "page.message must be at most {MAX_MESSAGE_CHARS} characters, without control characters other than line breaks"
                ));
            }
        }
        if let Some(u) = &self.logo_url {
            if !is_http_url(u, MAX_LOGO_URL_BYTES) {
                return bad(format!(
                    "page.logo_url must be an absolute http(s) URL of at most {MAX_LOGO_URL_BYTES} bytes without spaces or quotes"
                ));
            }
        }
        if let Some(c) = &self.accent_color {
            if parse_hex_color(c).is_none() {
                return bad("page.accent_color must be a colour like #1f5fd1".into());
            }
        }
        if let Some(t) = &self.template {
            check_template(t).or_else(|m| bad(format!("page.template {m}")))?;
        }
        Ok(())
    }
}

/// An absolute http(s) URL with a host, at most `max` bytes, nothing that could leave an
/// attribute or a CSP source (whitespace, quotes, `;`, `,`, angle brackets).
pub fn is_http_url(u: &str, max: usize) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
    host_ok
        && u.len() <= max
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'<>;,\\`".contains(c))
}

/// `#rrggbb` as its three channels.
pub fn parse_hex_color(c: &str) -> Option<[u8; 3]> {
    let hex = c.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let ch = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([ch(0)?, ch(2)?, ch(4)?])
}

/// Why a template is refused, if it is. Deliberately strict and simple: anything that looks
/// like script is refused, even in text, since the page's CSP is the second wall, not the only.
fn check_template(t: &str) -> Result<(), String> {
    if t.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("must be at most {MAX_TEMPLATE_BYTES} bytes"));
    }
    let lower = t.to_ascii_lowercase();
    if let Some(tag) = FORBIDDEN_TAGS.iter().find(|tag| lower.contains(*tag)) {
        return Err(format!("must not contain {tag}> elements"));
    }
    for scheme in ["javascript:", "vbscript:", "data:text/html"] {
        if lower.contains(scheme) {
            return Err(format!("must not contain {scheme} URLs"));
        }
    }
    if has_event_handler(&lower) {
        return Err("must not contain event-handler attributes (on...=)".into());
    }
    let mut queue = 0;
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has an unclosed {{".to_owned())?;
        let name = after[..end].trim();
        if !TEMPLATE_VARIABLES.contains(&name) {
            return Err(format!(
                "uses an unknown variable {{{{{name}}}}} (known: {})",
                TEMPLATE_VARIABLES.join(", ")
            ));
        }
        queue += usize::from(name == "queue");
        rest = &after[end + 2..];
    }
    if queue != 1 {
        return Err("must contain {{queue}} exactly once (where the live queue goes)".into());
    }
    Ok(())
}

/// An `on<letters>=` preceded by whitespace, `/`, a quote or `<`: an attribute such as
/// `onerror=` (spaces before the `=` included).
fn has_event_handler(lower: &str) -> bool {
    let b = lower.as_bytes();
    (0..b.len().saturating_sub(2)).any(|i| {
        let before_ok = i > 0
            && matches!(
                b[i - 1],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'"' | b'\''
            );
        if !before_ok || &b[i..i + 2] != b"on" {
            return false;
        }
        let mut j = i + 2;
        let start = j;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let named = j > start;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        named && j < b.len() && b[j] == b'='
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(t: &str) -> Result<(), QueueError> {
        PageSettings {
            template: Some(t.into()),
            ..Default::default()
        }
        .validate()
    }

    #[test]
    fn templates_that_could_run_script_are_refused() {
        assert!(tpl("<h1>{{title}}</h1>{{queue}}").is_ok());
        assert!(
            tpl("<p>Come on = go</p>{{queue}}").is_ok(),
            "text is not an attribute"
        );
        for t in [
            "<SCRIPT>alert(1)</script>{{queue}}",
            "<img src=x onerror=alert(1)>{{queue}}",
            "<img src=x\nONLOAD = alert(1)>{{queue}}",
            "<svg/onload=alert(1)>{{queue}}",
            "<a href=\"JavaScript:alert(1)\">x</a>{{queue}}",
            "<iframe src=x></iframe>{{queue}}",
            "<meta http-equiv=refresh content=0;url=x>{{queue}}",
            "<p>{{nope}}</p>{{queue}}",
            "<p>no widget</p>",
            "{{queue}}{{queue}}",
            "{{queue",
        ] {
            assert!(tpl(t).is_err(), "{t}");
        }
    }

    #[test]
    fn fields_are_checked() {
        let ok = PageSettings {
            title: Some("Spring sale".into()),
            message: Some("Line one\nline two".into()),
            logo_url: Some("https://cdn.example/logo.svg".into()),
            accent_color: Some("#A1b2C3".into()),
            template: None,
        };
        assert!(ok.validate().is_ok());
        let edits: [fn(&mut PageSettings); 7] = [
            |p| p.accent_color = Some("red".into()),
            |p| p.accent_color = Some("#12345".into()),
            |p| p.logo_url = Some("javascript:alert(1)".into()),
            |p| p.logo_url = Some("https://x/\"onerror=1".into()),
            |p| p.logo_url = Some("/relative.png".into()),
            |p| p.title = Some("x".repeat(MAX_TITLE_CHARS + 1)),
            |p| p.message = Some("a\u{0}b".into()),
        ];
        for edit in edits {
            let mut bad = ok.clone();
            edit(&mut bad);
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
