//! Property tests of the body processors: whatever the input, they never panic, never
//! yield more values or bytes than their budget allows, and read well-formed documents as
//! a reference parser does.

use proptest::prelude::*;

use super::multipart::Multipart;
use super::{BodyError, Budget, Limit, Pair, json, multipart, xml};

/// The budget every case runs under: small enough that generated inputs reach it.
const VALUES: usize = 64;
const BYTES: usize = 4096;
const DEPTH: usize = 16;

fn budget() -> Budget {
    Budget::new(VALUES, BYTES, DEPTH)
}

fn produced(pairs: &[Pair]) -> usize {
    pairs.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Bytes drawn mostly from JSON's own punctuation, so random inputs get past the first
/// byte and reach the reader's deeper states.
fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"{}[],:\"\\ \t\n0123456789.eE+-truefalsnu/bAK\x01\xc3\xa9\xff".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..300)
}

/// A well-formed document, as a reference parser writes it.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One long key over many items, nested: the shape whose names grow quadratically.
fn json_bomb() -> impl Strategy<Value = Vec<u8>> {
    (0usize..3000, 0usize..3000, 0usize..40).prop_map(|(key, items, depth)| {
        let mut s = format!("{{\"{}\":", "A".repeat(key));
        s.push_str(&"[".repeat(depth));
        s.push_str(&vec!["0"; items].join(","));
        s.push_str(&"]".repeat(depth));
        s.push('}');
        s.into_bytes()
    })
}

fn scalars(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => items.iter().map(scalars).sum(),
        serde_json::Value::Object(map) => map.values().map(scalars).sum(),
        _ => 1,
    }
}

fn check_json(data: &[u8]) -> Result<Vec<Pair>, TestCaseError> {
    let mut out = Vec::new();
    let result = json::parse(data, &mut budget(), &mut out);
    prop_assert!(out.len() <= VALUES, "{} values", out.len());
    prop_assert!(produced(&out) <= BYTES, "{} bytes", produced(&out));
    if let Err(BodyError::Limit(limit)) = result {
        prop_assert!(matches!(
            limit,
            Limit::Arguments | Limit::ArgumentBytes | Limit::JsonDepth
        ));
    }
    Ok(out)
}

fn check_xml(data: &[u8]) -> Result<(), TestCaseError> {
    // Whether it parses or not, what was read stays within the budget.
    let mut doc = xml::Document::default();
    let _ = xml::parse(data, &mut budget(), &mut doc);
    prop_assert!(doc.attributes.len() <= VALUES);
    let bytes = doc.text.len() + doc.attributes.iter().map(Vec::len).sum::<usize>();
    prop_assert!(bytes <= BYTES, "{bytes} bytes");
    Ok(())
}

fn check_multipart(body: &[u8]) -> Result<(), TestCaseError> {
    let mut m = Multipart::default();
    let _ = multipart::parse(
        "multipart/form-data; boundary=XX",
        body,
        &mut budget(),
        &mut m,
    );
    let Multipart {
        args,
        files,
        part_headers,
        ..
    } = m;
    prop_assert!(args.len() + files.len() <= VALUES);
    prop_assert!(part_headers.len() <= 4 * VALUES);
    let bytes = produced(&args)
        + produced(&part_headers)
        + files
            .iter()
            .map(|f| f.name.len() + f.filename.len())
            .sum::<usize>();
    prop_assert!(bytes <= BYTES, "{bytes} bytes");
    Ok(())
}

/// Multipart bodies from pieces real ones are made of, in any order.
fn multipart_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"--XX\r\n".to_vec()),
        Just(b"--XX--\r\n".to_vec()),
        Just(b"--XX".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"a\"\r\n".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n".to_vec()),
        Just(b"content-disposition: form-data; name=a; filename='x\r\n".to_vec()),
        Just(b"Content-Type: text/plain\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        "[ -~]{0,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

/// XML from the pieces of tags, attributes, text and declarations, in any order.
fn xml_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"<a>".to_vec()),
        Just(b"</a>".to_vec()),
        Just(b"<b x='1' y=\"&lt;2&#x41;\">".to_vec()),
        Just(b"</b>".to_vec()),
        Just(b"<c/>".to_vec()),
        Just(b"<![CDATA[z]]>".to_vec()),
        Just(b"<!-- c -->".to_vec()),
        Just(b"<?pi x?>".to_vec()),
        Just(b"<!DOCTYPE r [<!ENTITY e 'v'>]>".to_vec()),
        Just(b"&amp;&#1114111;&#xD800;&bogus;".to_vec()),
        "[ -~]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..6),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_of_any_bytes_stays_in_budget(data in json_ish()) {
        check_json(&data)?;
    }

    #[test]
    fn json_bombs_stay_in_budget(data in json_bomb()) {
        check_json(&data)?;
    }

    #[test]
    fn well_formed_json_reads_as_a_reference_parser_reads_it(value in json_value()) {
        let text = serde_json::to_vec(&value).expect("serializes");
        let mut out = Vec::new();
        let mut roomy = Budget::new(usize::MAX, usize::MAX, 1000);
        prop_assert_eq!(json::parse(&text, &mut roomy, &mut out), Ok(()));
        prop_assert_eq!(out.len(), scalars(&value));
        check_json(&text)?;
    }

    #[test]
    fn what_a_reference_parser_accepts_is_read(data in json_ish()) {
        if serde_json::from_slice::<serde_json::Value>(&data).is_ok() {
            let mut out = Vec::new();
            let mut roomy = Budget::new(usize::MAX, usize::MAX, 1000);
            prop_assert_eq!(json::parse(&data, &mut roomy, &mut out), Ok(()));
        }
    }

    #[test]
    fn xml_of_any_shape_stays_in_budget(data in xml_ish()) {
        check_xml(&data)?;
    }

    #[test]
    fn xml_nesting_is_bounded(depth in 0usize..64) {
        let doc = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let parsed = xml::parse(doc.as_bytes(), &mut budget(), &mut xml::Document::default());
        if depth == 0 {
            prop_assert!(matches!(parsed, Err(BodyError::Malformed(_))));
        } else if depth <= DEPTH {
            prop_assert!(parsed.is_ok());
        } else {
            prop_assert_eq!(parsed.err(), Some(BodyError::Limit(Limit::XmlDepth)));
        }
    }

    #[test]
    fn multipart_of_any_shape_stays_in_budget(body in multipart_ish()) {
        check_multipart(&body)?;
    }
}
