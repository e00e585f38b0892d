//! Error codes as employees type them from the Remote Desktop dialog, and code patterns in the
//! model (`"0x904"`, `"256-267"`).

/// Reads a code typed by an employee: `0x904` (hex), `2308` (decimal) or `1b07` (hex digits
/// with a letter). Surrounding words are skipped, so a pasted "Error code: 0x904" works too.
pub fn parse_code(text: &str) -> Option<u64> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')' | '.'))
        .find_map(parse_token)
}

fn parse_token(token: &str) -> Option<u64> {
    let token = token.trim().to_ascii_lowercase();
    if let Some(hex) = token.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok();
    }
    if token.chars().all(|c| c.is_ascii_digit()) {
        return token.parse().ok();
    }
    // Bare hex such as "1b07" must hold a digit, so that words like "face" are not codes.
    if token.chars().any(|c| c.is_ascii_digit()) {
        return u64::from_str_radix(&token, 16).ok();
    }
    None
}

/// A code or an inclusive range of codes, as an answer value of a code question lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodePattern {
    low: u64,
    high: u64,
}

impl CodePattern {
    /// Parses `"0x904"`, `"2825"` or `"50331650-50331682"`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (low, high) = match text.split_once('-') {
            Some((low, high)) => (parse_token(low)?, parse_token(high)?),
            None => {
                let code = parse_token(text)?;
                (code, code)
            }
        };
        (low <= high).then_some(CodePattern { low, high })
    }

    pub(crate) fn contains(self, code: u64) -> bool {
        (self.low..=self.high).contains(&code)
    }

    pub(crate) fn overlaps(self, other: CodePattern) -> bool {
        self.low <= other.high && other.low <= self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_are_read_as_the_dialog_shows_them() {
        assert_eq!(parse_code("0x904"), Some(0x904));
        assert_eq!(parse_code(" 0X904 "), Some(0x904));
        assert_eq!(parse_code("2308"), Some(2308));
        assert_eq!(parse_code("1b07"), Some(0x1b07));
        assert_eq!(parse_code("Error code: 0x904"), Some(0x904));
        assert_eq!(parse_code("Extended error code: 0x7."), Some(7));
        assert_eq!(parse_code("face"), None);
        assert_eq!(parse_code("no idea"), None);
        assert_eq!(parse_code(""), None);
    }

    #[test]
    fn patterns_cover_single_codes_and_inclusive_ranges() {
        let single = CodePattern::parse("0x904").unwrap();
        assert!(single.contains(2308));
        assert!(!single.contains(2309));
        let range = CodePattern::parse("256-267").unwrap();
        assert!(range.contains(256) && range.contains(267) && !range.contains(268));
        assert!(range.overlaps(CodePattern::parse("0x10b").unwrap()));
        assert!(!range.overlaps(single));
        assert_eq!(CodePattern::parse("9-3"), None);
        assert_eq!(CodePattern::parse("x"), None);
    }
}
