//! Helpers shared by the integration tests.

#![allow(dead_code)]

use hpack::{Decoder, DynamicTable, Header};

/// Parses the RFC's hex dumps, ignoring whitespace.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(text, 16).expect("hex digit")
        })
        .collect()
}

pub fn headers(fields: &[(&str, &str)]) -> Vec<Header> {
    fields.iter().map(|&(n, v)| Header::new(n, v)).collect()
}

pub fn table_entries(table: &DynamicTable) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Asserts the table's entries (newest first, as the RFC lists them) and size.
pub fn assert_table(decoder: &Decoder, expected: &[(&str, &str)], size: usize) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|&(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(table_entries(decoder.table()), expected);
    assert_eq!(decoder.table().size(), size);
}
