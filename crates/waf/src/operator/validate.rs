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

/// Whether the input is well-formed UTF-8 as ModSecurity judges it: no truncated sequences,
/// stray continuation bytes, overlong forms, surrogates or lead bytes above 0xF4.
pub(super) fn utf8_valid(input: &[u8]) -> bool {
    let mut i = 0;
    while i < input.len() {
        match utf8_sequence_len(&input[i..]) {
            Some(len) => i += len,
            None => return false,
        }
    }
    true
}

/// The length of the valid sequence at the start of `s`, if it is valid.
fn utf8_sequence_len(s: &[u8]) -> Option<usize> {
    let c = s[0];
    let (len, lead_bits, min) = match c {
        0x00..=0x7f => return Some(1),
        _ if c & 0xe0 == 0xc0 => (2, c & 0x1f, 0x80),
        _ if c & 0xf0 == 0xe0 => (3, c & 0x0f, 0x800),
        0xf0..=0xf4 => (4, c & 0x07, 0x10000),
        _ => return None,
    };
    let tail = s.get(1..len)?;
    if !tail.iter().all(|&b| b & 0xc0 == 0x80) {
        return None;
    }
    let cp = tail.iter().fold(u32::from(lead_bits), |cp, &b| {
        (cp << 6) | u32::from(b & 0x3f)
    });
    (cp >= min && !(0xd800..=0xdfff).contains(&cp)).then_some(len)
}
