//! The validation operators: they match when the input breaks a rule of well-formedness.

/// The bytes `@validateByteRange` allows.
#[derive(Debug)]
pub(super) struct ByteSet {
    allowed: [bool; 256],
}

impl ByteSet {
    /// Parses a comma-separated list of byte values and ranges, such as `9,10,13,32-126`.
    pub(super) fn parse(param: &str) -> Result<ByteSet, String> {
        let mut allowed = [false; 256];
        for part in param.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let byte = |s: &str| {
                s.trim().parse::<u8>().map_err(|_| {
                    format!("invalid byte value {s:?} in @validateByteRange (0-255 expected)")
                })
            };
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (byte(a)?, byte(b)?),
                None => (byte(part)?, byte(part)?),
            };
            if lo > hi {
                return Err(format!(
                    "invalid range {part:?} in @validateByteRange: start above end"
                ));
            }
            for b in lo..=hi {
                allowed[usize::from(b)] = true;
            }
        }
        Ok(ByteSet { allowed })
    }

    /// The position of the first byte the set does not allow.
    pub(super) fn first_outside(&self, input: &[u8]) -> Option<usize> {
        input.iter().position(|&b| !self.allowed[usize::from(b)])
    }
}

/// Whether every `%` starts a complete two-hex-digit escape.
pub(super) fn url_encoding_valid(input: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = input[i..].iter().position(|&b| b == b'%') {
        let p = i + off;
        match input.get(p + 1..p + 3) {
            Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i = p + 3,
            _ => return false,
        }
    }
    true
}

/// Whether the input is well-formed UTF-8: no truncated or overlong sequences, no stray
/// continuation bytes, no surrogates and nothing above U+10FFFF.
pub(super) fn utf8_valid(input: &[u8]) -> bool {
    // The standard library's validator rejects exactly these cases.
    std::str::from_utf8(input).is_ok()
}
