//! Properties of the codec as a whole: encoder and decoder stay in step under any
//! sequence of header lists and table-size changes, and the decoder stays within its
//! bounds on any input.

use hpack::{DEFAULT_TABLE_SIZE, DecodeError, Decoder, ENTRY_OVERHEAD, Encoder, Header};
use hpack::{huffman, integer};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------
// Header lists
// ---------------------------------------------------------------------------------

/// Every distinct static-table name, so encoded names hit the static table often.
const STATIC_NAMES: &[&str] = &[
    ":authority",
    ":method",
    ":path",
    ":scheme",
    ":status",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "accept",
    "access-control-allow-origin",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "link",
    "location",
    "max-forwards",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "refresh",
    "retry-after",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
];

/// Pseudo-headers, including one the static table lacks, and a few custom names
/// that recur so the dynamic table gets name and full matches.
const RECURRING_NAMES: &[&str] = &[
    ":protocol",
    ":method",
    ":status",
    "x-request-id",
    "x-trace",
    "x-a",
    "grpc-status",
];

/// Static-table values and a few others that recur, for full matches.
const RECURRING_VALUES: &[&str] = &[
    "",
    "GET",
    "POST",
    "/",
    "/index.html",
    "http",
    "https",
    "200",
    "404",
    "gzip, deflate",
    "no-cache",
    "application/grpc",
    "0",
];

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(STATIC_NAMES).prop_map(|n| n.as_bytes().to_vec()),
        3 => prop::sample::select(RECURRING_NAMES).prop_map(|n| n.as_bytes().to_vec()),
        3 => "[a-z0-9-]{1,24}".prop_map(String::into_bytes),
        1 => "[a-z0-9!#$%&'*+.^_`|~-]{0,6}".prop_map(String::into_bytes),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(RECURRING_VALUES).prop_map(|v| v.as_bytes().to_vec()),
        3 => prop::collection::vec(any::<u8>(), 0..32),
        2 => "[ -~]{0,64}".prop_map(String::into_bytes),
        // Around the encoder's 256-byte indexing cut-off.
        1 => prop::collection::vec(any::<u8>(), 200..320),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (name(), value(), prop::bool::weighted(0.15)).prop_map(|(name, value, sensitive)| Header {
        name,
        value,
        sensitive,
    })
}

fn table_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(DEFAULT_TABLE_SIZE),
        0usize..=160,
        0usize..=DEFAULT_TABLE_SIZE,
        DEFAULT_TABLE_SIZE..=80_000,
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Block(Vec<Header>),
    /// A SETTINGS_HEADER_TABLE_SIZE change, applied by both ends before the next block.
    Resize(usize),
}

/// An operation as drawn, before `Again` is made the block it stands for.
#[derive(Clone, Debug)]
enum Drawn {
    Op(Op),
    /// The last block again, with the field at this place (modulo its length) given a
    /// new value: the same fields in the same places, as messages on a connection repeat.
    Again(usize, Vec<u8>),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => prop::collection::vec(header(), 0..12).prop_map(|h| Drawn::Op(Op::Block(h))),
        3 => (any::<usize>(), value()).prop_map(|(place, value)| Drawn::Again(place, value)),
        1 => table_size().prop_map(|size| Drawn::Op(Op::Resize(size))),
    ];
    prop::collection::vec(op, 0..16).prop_map(|drawn| {
        let mut last: Vec<Header> = Vec::new();
        drawn
            .into_iter()
            .map(|drawn| match drawn {
                Drawn::Op(Op::Block(headers)) => {
                    last.clone_from(&headers);
                    Op::Block(headers)
                }
                Drawn::Op(op) => op,
                Drawn::Again(place, value) => {
                    let mut headers = last.clone();
                    let len = headers.len();
                    if let Some(header) = headers.get_mut(place % len.max(1)) {
                        header.value = value;
                    }
                    last.clone_from(&headers);
                    Op::Block(headers)
                }
            })
            .collect()
    })
}

/// A dynamic table's entries, newest first.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn entries(table: &hpack::DynamicTable) -> Entries {
    table
        .iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

/// Runs `ops` through an encoder and a decoder, checking every block, and returns
/// the encoder's table entries after each block.
fn round_trip(ops: &[Op]) -> Result<Vec<Entries>, TestCaseError> {
    let mut encoder = Encoder::new();
    let mut decoder = Decoder::new(DEFAULT_TABLE_SIZE);
    decoder.set_max_header_list_size(usize::MAX);
    let mut limit = DEFAULT_TABLE_SIZE;
    let mut tables = Vec::new();
    for op in ops {
        match op {
            Op::Resize(size) => {
                encoder.set_max_table_size(*size);
                decoder.set_max_table_size(*size);
                limit = *size;
            }
            Op::Block(headers) => {
                let mut block = Vec::new();
                encoder.encode(headers.iter().map(Header::as_field), &mut block);
                let decoded = decoder.decode_to_vec(&block);
                prop_assert_eq!(decoded.as_ref(), Ok(headers));

                let (ours, theirs) = (encoder.table(), decoder.table());
                prop_assert_eq!(entries(ours), entries(theirs));
                prop_assert_eq!(ours.size(), theirs.size());
                prop_assert_eq!(ours.max_size(), theirs.max_size());
                prop_assert!(theirs.size() <= theirs.max_size());
                prop_assert!(theirs.max_size() <= limit);
                let counted: usize = theirs
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD)
                    .sum();
                prop_assert_eq!(counted, theirs.size());
                tables.push(entries(ours));
            }
        }
    }
    Ok(tables)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every block decodes to exactly the fields encoded (sensitivity included), and
    /// both dynamic tables match after every block, whatever the size changes.
    #[test]
    fn encoder_and_decoder_stay_in_step(ops in ops()) {
        round_trip(&ops)?;
    }

    /// Sensitive fields are sent never-indexed (the decoder reports them sensitive,
    /// checked by `round_trip`) and touch neither table: dropping them from every
    /// block leaves both tables exactly as they were.
    #[test]
    fn sensitive_fields_never_enter_a_table(ops in ops()) {
        let with = round_trip(&ops)?;
        let without: Vec<Op> = ops
            .iter()
            .map(|op| match op {
                Op::Block(headers) => {
                    Op::Block(headers.iter().filter(|h| !h.sensitive).cloned().collect())
                }
                Op::Resize(size) => Op::Resize(*size),
            })
            .collect();
        prop_assert_eq!(with, round_trip(&without)?);
    }

    /// A header list made only of sensitive fields leaves both tables empty, even when
    /// every field repeats.
    #[test]
    fn sensitive_fields_are_never_indexed(headers in prop::collection::vec(header(), 1..8)) {
        let headers: Vec<Header> =
            headers.into_iter().map(|h| Header { sensitive: true, ..h }).collect();
        let mut encoder = Encoder::new();
        let mut decoder = Decoder::new(DEFAULT_TABLE_SIZE);
        for _ in 0..2 {
            let mut block = Vec::new();
            encoder.encode(headers.iter().map(Header::as_field), &mut block);
            let decoded = decoder.decode_to_vec(&block).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(decoded.iter().all(|h| h.sensitive));
            prop_assert_eq!(&decoded, &headers);
            prop_assert!(encoder.table().is_empty());
            prop_assert!(decoder.table().is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------
// The decoder on hostile input
// ---------------------------------------------------------------------------------

/// One representation, well-formed or slightly off, so that generated blocks get past
/// the first byte and reach the table, Huffman and budget code.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let string = (
        prop::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
        -2i64..=2,
        0u8..8,
    )
        .prop_map(|(raw, use_huffman, skew, skew_odds)| {
            let mut payload = Vec::new();
            if use_huffman {
                huffman::encode(&raw, &mut payload);
            } else {
                payload = raw;
            }
            // Now and then the declared length is off by a little.
            let declared = if skew_odds == 0 {
                payload.len().saturating_add_signed(skew as isize)
            } else {
                payload.len()
            };
            let mut out = Vec::new();
            integer::encode(declared, 7, if use_huffman { 0x80 } else { 0 }, &mut out);
            out.extend_from_slice(&payload);
            out
        });
    let literal_kind = prop::sample::select(&[(6u8, 0x40u8), (4, 0x00), (4, 0x10)][..]);
    let index = || {
        prop_oneof![
            20 => 1usize..=61,
            1 => 62usize..66,
            1 => 0usize..90,
        ]
    };
    prop_oneof![
        8 => index().prop_map(|index| {
            let mut out = Vec::new();
            integer::encode(index, 7, 0x80, &mut out);
            out
        }),
        8 => (literal_kind, prop_oneof![Just(0), index()], string.clone(), string).prop_map(
            |((prefix_bits, flags), name_index, name, value)| {
                let mut out = Vec::new();
                integer::encode(name_index, prefix_bits, flags, &mut out);
                if name_index == 0 {
                    out.extend_from_slice(&name);
                }
                out.extend_from_slice(&value);
                out
            }
        ),
        1 => size_update(),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn size_update() -> impl Strategy<Value = Vec<u8>> {
    (0usize..6000).prop_map(|size| {
        let mut out = Vec::new();
        integer::encode(size, 5, 0x20, &mut out);
        out
    })
}

/// A block: random bytes, or representations, possibly repeated up to 64 KiB so that
/// the budget, not the input, is what stops the decoder.
fn hostile_block() -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        prop::collection::vec(fragment(), 0..12),
        1usize..=4096,
        any::<u16>(),
    )
        .prop_map(|(fragments, repeat, flip)| {
            let unit = fragments.concat();
            let times = repeat.min((64 * 1024) / unit.len().max(1));
            let mut block = unit.repeat(times.max(1));
            // One flipped byte somewhere, to break an otherwise valid block.
            if !block.is_empty() && flip % 3 == 0 {
                let at = usize::from(flip) % block.len();
                block[at] ^= (flip >> 8) as u8 | 1;
            }
            block
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        3 => structured,
    ]
}

/// What one block did to the decoder, for checking against its bounds.
struct Outcome {
    result: Result<(), DecodeError>,
    fields: usize,
    list_size: usize,
    decoded_bytes: usize,
}

fn decode_counting(decoder: &mut Decoder, block: &[u8]) -> Outcome {
    let (mut fields, mut list_size, mut decoded_bytes) = (0, 0, 0);
    let result = decoder.decode(block, |field| {
        fields += 1;
        list_size += field.size();
        decoded_bytes += field.name.len() + field.value.len();
        Ok::<(), DecodeError>(())
    });
    Outcome {
        result,
        fields,
        list_size,
        decoded_bytes,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any sequence of blocks: no panic, the header list and the dynamic table stay
    /// within their limits, and the output is bounded by the header-list limit
    /// however large the input.
    #[test]
    fn decoder_stays_within_bounds(
        blocks in prop::collection::vec(hostile_block(), 1..4),
        table_limit in table_size(),
        list_limit in prop_oneof![0usize..=200, 0usize..=16 * 1024],
        settings_change in prop::option::of(table_size()),
    ) {
        let mut decoder = Decoder::new(table_limit);
        decoder.set_max_header_list_size(list_limit);
        let initial_limit = table_limit;
        let mut table_limit = table_limit;
        for (i, block) in blocks.iter().enumerate() {
            if let (1, Some(size)) = (i, settings_change) {
                decoder.set_max_table_size(size);
                table_limit = size;
            }
            let outcome = decode_counting(&mut decoder, block);
            prop_assert!(outcome.list_size <= list_limit);
            prop_assert!(outcome.decoded_bytes <= list_limit);
            prop_assert!(outcome.fields <= list_limit / ENTRY_OVERHEAD);
            let table = decoder.table();
            prop_assert!(table.size() <= table.max_size());
            // A size update the new limit requires may not have arrived yet.
            prop_assert!(table.max_size() <= table_limit.max(initial_limit));
            if outcome.result.is_err() {
                // The decoder is out of step after an error; a caller drops it.
                break;
            }
            prop_assert!(table.max_size() <= table_limit);
        }
    }
}

// ---------------------------------------------------------------------------------
// Huffman code
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn huffman_round_trips(src in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut encoded = Vec::new();
        huffman::encode(&src, &mut encoded);
        prop_assert_eq!(encoded.len(), huffman::encoded_len(&src));
        let mut decoded = Vec::new();
        prop_assert_eq!(huffman::decode(&encoded, &mut decoded, src.len()), Ok(()));
        prop_assert_eq!(decoded, src);
    }

    #[test]
    fn huffman_decode_of_any_bytes_is_bounded(
        src in prop::collection::vec(any::<u8>(), 0..600),
        limit in prop_oneof![Just(usize::MAX), 0usize..100],
    ) {
        let mut decoded = Vec::new();
        let result = huffman::decode(&src, &mut decoded, limit);
        prop_assert!(decoded.len() <= 8 * src.len() / 5 + 1);
        prop_assert!(decoded.len() <= limit);
        if let Err(error) = result {
            prop_assert!(matches!(
                error,
                DecodeError::HuffmanEos
                    | DecodeError::HuffmanPaddingTooLong
                    | DecodeError::HuffmanPaddingNotOnes
                    | DecodeError::HeaderListTooLarge { .. }
            ), "{error:?}");
        }
    }

    /// Padding is at most 7 bits, so a whole byte appended to a valid encoding can
    /// never be silently dropped: it decodes to more symbols or is rejected.
    #[test]
    fn huffman_decode_rejects_any_trailing_garbage_byte(
        src in prop::collection::vec(any::<u8>(), 0..40),
        garbage in any::<u8>(),
    ) {
        let mut encoded = Vec::new();
        huffman::encode(&src, &mut encoded);
        encoded.push(garbage);
        let mut decoded = Vec::new();
        if huffman::decode(&encoded, &mut decoded, usize::MAX).is_ok() {
            prop_assert!(decoded.len() > src.len());
            prop_assert_eq!(&decoded[..src.len()], &src[..]);
        }
    }
}

// ---------------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------------

fn prefix_mask(prefix_bits: u8) -> u8 {
    ((1u16 << prefix_bits) - 1) as u8
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn integer_round_trips(
        prefix_bits in 1u8..=8,
        value in prop_oneof![0usize..300, 0usize..=integer::MAX_VALUE, Just(integer::MAX_VALUE)],
        flags in any::<u8>(),
        trailing in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let flags = flags & !prefix_mask(prefix_bits);
        let mut encoded = Vec::new();
        integer::encode(value, prefix_bits, flags, &mut encoded);
        prop_assert_eq!(encoded[0] & !prefix_mask(prefix_bits), flags);
        prop_assert!(encoded.len() <= 1 + integer::MAX_CONTINUATION_BYTES);
        let len = encoded.len();
        encoded.extend_from_slice(&trailing);
        let mut pos = 0;
        prop_assert_eq!(integer::decode(prefix_bits, &encoded, &mut pos), Ok(value));
        prop_assert_eq!(pos, len);
    }

    /// Values past `u32::MAX` are rejected, never wrapped.
    #[test]
    fn integer_past_u32_is_rejected(
        prefix_bits in 1u8..=8,
        value in (integer::MAX_VALUE as u64 + 1)..=u64::MAX,
    ) {
        let mut encoded = Vec::new();
        integer::encode(value as usize, prefix_bits, 0, &mut encoded);
        let mut pos = 0;
        prop_assert_eq!(
            integer::decode(prefix_bits, &encoded, &mut pos),
            Err(DecodeError::IntegerOverflow)
        );
        prop_assert!(pos <= 1 + integer::MAX_CONTINUATION_BYTES);
    }

    /// Any sequence of continuation bytes decodes to its exact value, or fails with
    /// `IntegerOverflow` when it is longer than five bytes or exceeds `u32::MAX`.
    #[test]
    fn integer_continuations_match_the_arithmetic(
        prefix_bits in 1u8..=8,
        groups in prop::collection::vec(0u8..0x80, 1..12),
    ) {
        let mut encoded = vec![prefix_mask(prefix_bits)];
        for (i, &group) in groups.iter().enumerate() {
            let more = if i + 1 < groups.len() { 0x80 } else { 0 };
            encoded.push(group | more);
        }
        let exact: u128 = u128::from(prefix_mask(prefix_bits))
            + groups
                .iter()
                .enumerate()
                .map(|(i, &g)| u128::from(g) << (7 * i))
                .sum::<u128>();
        let expected = if groups.len() > integer::MAX_CONTINUATION_BYTES
            || exact > integer::MAX_VALUE as u128
        {
            Err(DecodeError::IntegerOverflow)
        } else {
            Ok(exact as usize)
        };
        let mut pos = 0;
        prop_assert_eq!(integer::decode(prefix_bits, &encoded, &mut pos), expected);
        prop_assert!(pos <= 1 + integer::MAX_CONTINUATION_BYTES);
    }

    /// A run of `0x80` bytes of any length fails after at most five of them.
    #[test]
    fn integer_continuation_runs_fail_fast(prefix_bits in 1u8..=8, run in 6usize..70_000) {
        let mut encoded = vec![prefix_mask(prefix_bits)];
        encoded.resize(1 + run, 0x80);
        let mut pos = 0;
        prop_assert_eq!(
            integer::decode(prefix_bits, &encoded, &mut pos),
            Err(DecodeError::IntegerOverflow)
        );
        prop_assert_eq!(pos, 1 + integer::MAX_CONTINUATION_BYTES);
    }
}
