//! The waiting page's languages: the message catalog (i18n.json), `Accept-Language`
//! negotiation with q-values, and number formatting for the server-rendered (no-JS) page.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Tags as shipped; the first is the fallback.
pub const LANGS: [&str; 10] = [
    "en", "de", "fr", "es", "it", "pt-BR", "ja", "ko", "zh-CN", "ar",
];

type Messages = BTreeMap<String, String>;

fn catalog() -> &'static BTreeMap<String, Messages> {
    static CATALOG: OnceLock<BTreeMap<String, Messages>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // Checked by the tests below: a broken catalog never ships.
        serde_json::from_str(include_str!("i18n.json")).unwrap_or_default()
    })
}

/// One shipped language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang(&'static str);

impl Lang {
    pub const EN: Lang = Lang("en");

    /// The BCP 47 tag (`<html lang>`, `Intl` locale).
    pub fn tag(self) -> &'static str {
        self.0
    }

    /// `rtl` for Arabic, else `ltr`.
    pub fn dir(self) -> &'static str {
        if self.0 == "ar" {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The message `key` (English when this language lacks it).
    pub fn msg(self, key: &str) -> &'static str {
        let c = catalog();
        c.get(self.0)
            .and_then(|m| m.get(key))
            .or_else(|| c.get("en").and_then(|m| m.get(key)))
            .map_or("", String::as_str)
    }

    /// The message `key` with `{name}` placeholders filled.
    pub fn fmt(self, key: &str, vars: &[(&str, &str)]) -> String {
        let mut s = self.msg(key).to_owned();
        for (name, value) in vars {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// [`Lang::messages`] as a JSON object with every `<` escaped (`\u003c`, for a
    /// `<script>` element), made once per language: it is the same in every page, and perf
    /// had collecting and escaping it per request at ~7 % of a page load.
    pub fn messages_json(self) -> &'static str {
        static JSON: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();
        let all = JSON.get_or_init(|| {
            LANGS
                .iter()
                .map(|&tag| {
                    let json = serde_json::to_string(&Lang(tag).messages()).unwrap_or_default();
                    (tag, json.replace('<', "\\u003c"))
                })
                .collect()
        });
        all.get(self.0).map_or("{}", String::as_str)
    }

    /// Every message of this language (the page's script gets them, English filling gaps).
    pub fn messages(self) -> BTreeMap<&'static str, &'static str> {
        let c = catalog();
        let en = c.get("en").into_iter().flatten();
        en.map(|(k, _)| (k.as_str(), self.msg(k))).collect()
    }

    /// `n` with the locale's digit grouping, as `Intl.NumberFormat` writes it (CLDR: `es` and
    /// `it` group only from five digits; `fr` with a narrow no-break space).
    pub fn number(self, n: u64) -> String {
        let (sep, min_digits) = match self.0 {
            "de" | "pt-BR" => (".", 4),
            "es" | "it" => (".", 5),
            "fr" => ("\u{202f}", 4),
            _ => (",", 4),
        };
        let digits = n.to_string();
        if digits.len() < min_digits {
            return digits;
        }
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }
}

/// A shipped language for one tag: exact (case-insensitive), else by its primary subtag
/// (`de-AT` -> `de`, `pt`/`pt-PT` -> `pt-BR`, `zh`/`zh-TW` -> `zh-CN`).
pub fn lookup(tag: &str) -> Option<Lang> {
    let tag = tag.trim();
    if let Some(l) = LANGS.iter().find(|l| l.eq_ignore_ascii_case(tag)) {
        return Some(Lang(l));
    }
    let primary = tag.split(['-', '_']).next()?;
    LANGS
        .iter()
        .find(|l| {
            l.split('-')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(primary))
        })
        .map(|l| Lang(l))
}

/// The language for a request: `?lang=` when it names a shipped language, else the best of
/// `Accept-Language` by q-value (ties keep the header's order), else English.
pub fn negotiate(accept_language: Option<&str>, lang_param: Option<&str>) -> Lang {
    if let Some(l) = lang_param.and_then(lookup) {
        return l;
    }
    let mut ranges: Vec<(u16, &str)> = accept_language
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1000), parse_q)?;
            (q > 0 && !tag.is_empty() && tag != "*").then_some((q, tag))
        })
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.0));
    ranges
        .iter()
        .find_map(|(_, tag)| lookup(tag))
        .unwrap_or(Lang::EN)
}

/// A q-value in thousandths (RFC 9110: `0`..`1` with up to three decimals); None if malformed.
fn parse_q(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    (whole + frac <= 1000).then_some(whole + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let c = catalog();
        let en = &c["en"];
        assert!(en.len() > 30);
        for l in LANGS {
            let m = c.get(l).unwrap_or_else(|| panic!("{l} missing"));
            for k in en.keys() {
                assert!(m.get(k).is_some_and(|v| !v.is_empty()), "{l}.{k}");
            }
            assert_eq!(m.len(), en.len(), "{l} has keys English lacks");
        }
    }

    #[test]
    fn the_messages_json_of_each_language_is_its_messages_safe_in_a_script() {
        for l in LANGS {
            let lang = Lang(l);
            let json = lang.messages_json();
            assert!(!json.contains('<'), "{l}");
            let parsed: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
            let expected: BTreeMap<String, String> = lang
                .messages()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(parsed, expected, "{l}");
        }
    }

    #[test]
    fn accept_language_by_q_value_with_region_fallback() {
        let t = |h: &str| negotiate(Some(h), None).tag();
        assert_eq!(t("fr-CH, fr;q=0.9, en;q=0.8"), "fr");
        assert_eq!(t("en;q=0.5, de-AT;q=0.9"), "de");
        assert_eq!(t("pt"), "pt-BR");
        assert_eq!(t("pt-PT;q=1.0"), "pt-BR");
        assert_eq!(t("zh"), "zh-CN");
        assert_eq!(t("ZH-cn"), "zh-CN");
        assert_eq!(t("nl, ja;q=0.1"), "ja", "unknown languages are skipped");
        assert_eq!(t("ar;q=0, es;q=0.2"), "es", "q=0 means not acceptable");
        assert_eq!(t("ko;q=2, it;q=0.3"), "it", "a malformed q is ignored");
        assert_eq!(t("*"), "en");
        assert_eq!(negotiate(None, None).tag(), "en");
        assert_eq!(negotiate(Some("de"), Some("ar")).tag(), "ar");
        assert_eq!(negotiate(Some("de"), Some("xx")).tag(), "de");
    }

    #[test]
    fn numbers_are_grouped_as_intl_does() {
        assert_eq!(Lang("en").number(1234), "1,234");
        assert_eq!(Lang("de").number(1234), "1.234");
        assert_eq!(Lang("de").number(1234567), "1.234.567");
        assert_eq!(Lang("es").number(1234), "1234");
        assert_eq!(Lang("es").number(12345), "12.345");
        assert_eq!(Lang("fr").number(12345), "12\u{202f}345");
        assert_eq!(Lang("ja").number(999), "999");
    }
}
