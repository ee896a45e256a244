//! `application/x-www-form-urlencoded` bodies and query strings.

use super::{Budget, Limit, Pair};

/// Splits `data` on `separator` into decoded name/value pairs within `budget` (the pairs
/// that fit are kept). A pair without `=` is a name with an empty value. Returns whether
/// an invalid `%` escape was seen.
pub(crate) fn parse(
    data: &[u8],
    separator: u8,
    budget: &mut Budget,
    out: &mut Vec<Pair>,
) -> Result<bool, Limit> {
    let mut invalid = false;
    for piece in data.split(|&b| b == separator) {
        if piece.is_empty() {
            continue;
        }
        // Decoding never lengthens a pair.
        budget.take(piece.len())?;
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &[][..]),
        };
        let name = decode(name, &mut invalid);
        let value = decode(value, &mut invalid);
        out.push((String::from_utf8_lossy(&name).into_owned(), value));
    }
    Ok(invalid)
}

/// Percent- and plus-decodes; an invalid escape is kept as written.
pub(crate) fn decode(input: &[u8], invalid: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    input.get(i + 1).and_then(|&b| hex(b)),
                    input.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => {
                        *invalid = true;
                        out.push(b'%');
                    }
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> Budget {
        Budget::new(1000, 1 << 20, 1)
    }

    #[test]
    fn decodes_pairs_and_keeps_bad_escapes() {
        let mut out = Vec::new();
        let invalid = parse(b"a=1+2&b&c=%41%zz&&d=x=y", b'&', &mut roomy(), &mut out);
        assert_eq!(invalid, Ok(true));
        assert_eq!(out[0], ("a".into(), b"1 2".to_vec()));
        assert_eq!(out[1], ("b".into(), b"".to_vec()));
        assert_eq!(out[2], ("c".into(), b"A%zz".to_vec()));
        assert_eq!(out[3], ("d".into(), b"x=y".to_vec()));
    }

    #[test]
    fn honours_another_separator() {
        let mut out = Vec::new();
        assert_eq!(parse(b"a=1;b=2", b';', &mut roomy(), &mut out), Ok(false));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn stops_at_the_argument_limit() {
        let mut out = Vec::new();
        let mut budget = Budget::new(2, 1 << 20, 1);
        assert_eq!(
            parse(b"a=1&b=2&c=3", b'&', &mut budget, &mut out),
            Err(Limit::Arguments)
        );
        assert_eq!(out.len(), 2);
    }
}
