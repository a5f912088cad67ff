//! Page assembly: escaping, one-pass `{{variable}}` substitution, the colour palette with its
//! contrast rules (WCAG 2.1 AA), and origins for the Content-Security-Policy.

/// `s` escaped for HTML text and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A template split at its `{{name}}` variables. The pages' own templates are split once
/// (`LazyLock`), so a page load copies their text instead of scanning ~18 KB of HTML, CSS and
/// script for braces (perf had the scan at ~12 % of a page load); an operator's template is
/// split per page.
pub struct Template<'a> {
    /// Text, then the variable after it (None after the last text).
    parts: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Template<'a> {
    /// `template` split at its variables; `{{` without a closing `}}` is text.
    pub fn parse(template: &'a str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(end) = after.find("}}") else {
                break;
            };
            parts.push((&rest[..i], Some(after[..end].trim())));
            rest = &after[end + 2..];
        }
        parts.push((rest, None));
        Self { parts }
    }

    /// The text with each `{{name}}` replaced by `value(name)` (unknown names by nothing), in
    /// one pass: what a value brings in is never scanned again, so text from an operator or a
    /// visitor cannot name a variable of the page around it.
    pub fn fill(&self, value: impl Fn(&str) -> String) -> String {
        let text: usize = self.parts.iter().map(|(t, _)| t.len()).sum();
        let mut out = String::with_capacity(text + 1024);
        for (t, name) in &self.parts {
            out.push_str(t);
            if let Some(name) = name {
                out.push_str(&value(name));
            }
        }
        out
    }
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL, for a CSP source list.
pub fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let host_len = url[scheme_end..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - scheme_end);
    (host_len > 0).then(|| &url[..scheme_end + host_len])
}

/// sRGB relative luminance (WCAG 2.1).
fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// The contrast ratio of two colours, 1 to 21.
pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];

/// The text colour for text drawn on `background`: white, or black where white would not
/// reach 4.5:1 and black does better (one of them always reaches 4.5:1).
pub fn text_on(background: [u8; 3]) -> [u8; 3] {
    if contrast(WHITE, background) >= 4.5
        || contrast(WHITE, background) > contrast(BLACK, background)
    {
        WHITE
    } else {
        BLACK
    }
}

pub fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A colour scheme of the page. `accent` fills buttons, the progress bar and the top band;
/// text on it uses [`text_on`].
pub struct Palette {
    pub fg: [u8; 3],
    pub bg: [u8; 3],
    pub card: [u8; 3],
    pub muted: [u8; 3],
    pub warn: [u8; 3],
    pub bad: [u8; 3],
    pub accent: [u8; 3],
}

/// The light scheme: fg, bg, card, muted, warn, bad, accent as `0xRRGGBB`.
pub const LIGHT: Palette = Palette::rgb([
    0x1b1b1f, 0xf6f6f8, 0xffffff, 0x5b5b66, 0x8a5300, 0xa1121f, 0x1f5fd1,
]);

/// The dark scheme, in the order of [`LIGHT`].
pub const DARK: Palette = Palette::rgb([
    0xececf1, 0x141418, 0x1f1f26, 0xa8a8b3, 0xffc266, 0xff8a94, 0x7aa7ff,
]);

impl Palette {
    /// A palette from its colours as `0xRRGGBB`, in the order of the fields.
    const fn rgb([fg, bg, card, muted, warn, bad, accent]: [u32; 7]) -> Self {
        const fn split(c: u32) -> [u8; 3] {
            [(c >> 16) as u8, (c >> 8) as u8, c as u8]
        }
        Self {
            fg: split(fg),
            bg: split(bg),
            card: split(card),
            muted: split(muted),
            warn: split(warn),
            bad: split(bad),
            accent: split(accent),
        }
    }

    /// The CSS custom properties of this palette, with the operator's accent if any.
    pub fn css(&self, accent: Option<[u8; 3]>) -> String {
        let accent = accent.unwrap_or(self.accent);
        format!(
            "--fg: {}; --bg: {}; --card: {}; --muted: {}; --warn: {}; --bad: {}; --accent: {}; --on-accent: {};",
            hex(self.fg),
            hex(self.bg),
            hex(self.card),
            hex(self.muted),
            hex(self.warn),
            hex(self.bad),
            hex(accent),
            hex(text_on(accent)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_palettes_meet_aa() {
        for p in [&LIGHT, &DARK] {
            for (name, fg, bg) in [
                ("text", p.fg, p.bg),
                ("text on card", p.fg, p.card),
                ("muted on card", p.muted, p.card),
                ("muted on page", p.muted, p.bg),
                ("warning", p.warn, p.card),
                ("problem", p.bad, p.card),
                ("button", text_on(p.accent), p.accent),
            ] {
                let c = contrast(fg, bg);
                assert!(c >= 4.5, "{name}: {c:.2}");
            }
        }
    }

    #[test]
    fn any_accent_gets_readable_text() {
        // Yellow and light green fail with white: black is picked; dark blue keeps white.
        assert_eq!(text_on([0xff, 0xd7, 0x00]), BLACK);
        assert_eq!(text_on([0x7a, 0xa7, 0xff]), BLACK);
        assert_eq!(text_on([0x1f, 0x5f, 0xd1]), WHITE);
        for v in (0..=255u8).step_by(5) {
            for accent in [[v, v, v], [v, 0, 255 - v], [255, v, 0], [0, v, v]] {
                let c = contrast(text_on(accent), accent);
                assert!(c >= 4.5, "{accent:?}: {c:.2}");
            }
        }
    }

    #[test]
    fn fill_is_one_pass_and_escape_neutralises_markup() {
        let out = Template::parse("<h1>{{title}}</h1>{{ queue }}{{nope}}").fill(|k| match k {
            "title" => escape("<img src=x onerror=alert(1)> {{queue}}"),
            "queue" => "[widget]".into(),
            _ => String::new(),
        });
        assert_eq!(
            out,
            "<h1>&lt;img src=x onerror=alert(1)&gt; {{queue}}</h1>[widget]"
        );
        // Single braces are text; a variable that is not closed stays as written.
        let out = Template::parse("a{b}c{ {{{queue}} }}{{queue").fill(|k| format!("[{k}]"));
        assert_eq!(out, "a{b}c{ [{queue] }}{{queue");
        assert_eq!(
            origin("https://cdn.example:8443/a/b.png?x"),
            Some("https://cdn.example:8443")
        );
        assert_eq!(origin("http://shop.example"), Some("http://shop.example"));
    }
}
