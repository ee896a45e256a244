//! Every decoding fault, each provoked by a hand-written block.

mod common;

use common::hex;
use hpack::{DecodeError, Decoder, Field};

fn decode(block: &str) -> Result<Vec<hpack::Header>, DecodeError> {
    Decoder::new(4096).decode_to_vec(&hex(block))
}

#[test]
fn truncated_integer() {
    // Indexed field whose 7-bit prefix is full but no continuation byte follows.
    assert_eq!(decode("ff"), Err(DecodeError::Truncated));
    // Literal with a name-length continuation cut off.
    assert_eq!(decode("00 7f"), Err(DecodeError::Truncated));
    // Literal missing its value entirely.
    assert_eq!(decode("00 01 61"), Err(DecodeError::Truncated));
}

#[test]
fn integer_overflow() {
    // 127 + 0x0fffffff + (0x0f << 28) > u32::MAX.
    assert_eq!(
        decode("ff ff ff ff ff 0f"),
        Err(DecodeError::IntegerOverflow)
    );
    // Six continuation bytes, all zero: within range, but too long to accept.
    assert_eq!(
        decode("ff 80 80 80 80 80 00"),
        Err(DecodeError::IntegerOverflow)
    );
    // A string length that overflows.
    assert_eq!(
        decode("00 ff ff ff ff ff 7f"),
        Err(DecodeError::IntegerOverflow)
    );
}

#[test]
fn string_past_end() {
    assert_eq!(
        decode("40 05 6162"),
        Err(DecodeError::StringPastEnd {
            len: 5,
            available: 2
        })
    );
    // Value length past the end, after a valid name.
    assert_eq!(
        decode("40 01 61 03 62"),
        Err(DecodeError::StringPastEnd {
            len: 3,
            available: 1
        })
    );
    // Huffman flag set, same rule.
    assert_eq!(
        decode("00 8a 1f"),
        Err(DecodeError::StringPastEnd {
            len: 10,
            available: 1
        })
    );
}

#[test]
fn huffman_eos() {
    // Name "a" then EOS, Huffman-coded: 00011 + 30 ones + 5 ones of padding.
    assert_eq!(decode("00 85 1fffffffff 00"), Err(DecodeError::HuffmanEos));
}

#[test]
fn huffman_padding_too_long() {
    // "a" (00011) + 111, then a whole byte of ones: 11 bits of padding.
    assert_eq!(
        decode("00 82 1fff 00"),
        Err(DecodeError::HuffmanPaddingTooLong)
    );
}

#[test]
fn huffman_padding_not_ones() {
    // "a" (00011) + 110.
    assert_eq!(
        decode("00 81 1e 00"),
        Err(DecodeError::HuffmanPaddingNotOnes)
    );
    // Same fault in a value.
    assert_eq!(
        decode("00 01 61 81 1c"),
        Err(DecodeError::HuffmanPaddingNotOnes)
    );
}

#[test]
fn zero_index() {
    assert_eq!(decode("80"), Err(DecodeError::ZeroIndex));
}

#[test]
fn index_out_of_range() {
    // 62 is the first dynamic index; the table is empty.
    assert_eq!(decode("be"), Err(DecodeError::IndexOutOfRange(62)));
    // Literal whose name index is out of range.
    assert_eq!(decode("7f 00 01 61"), Err(DecodeError::IndexOutOfRange(63)));
    // After one insertion, 62 is valid and 63 is not.
    let mut decoder = Decoder::new(4096);
    decoder.decode_to_vec(&hex("40 01 61 01 62")).unwrap();
    assert_eq!(decoder.decode_to_vec(&hex("be")).unwrap()[0].value, b"b");
    assert_eq!(
        decoder.decode_to_vec(&hex("bf")),
        Err(DecodeError::IndexOutOfRange(63))
    );
}

#[test]
fn size_update_too_large() {
    // 31 + 0x62 + (0x1f << 7) = 4097.
    assert_eq!(
        decode("3f e2 1f"),
        Err(DecodeError::SizeUpdateTooLarge {
            requested: 4097,
            limit: 4096
        })
    );
    // Exactly the limit is fine.
    assert_eq!(decode("3f e1 1f 82").unwrap().len(), 1);
}

#[test]
fn size_update_not_at_start() {
    assert_eq!(decode("82 20"), Err(DecodeError::SizeUpdateNotAtStart));
    // Several updates at the start are fine (minimum then final).
    assert_eq!(decode("20 3f e1 1f 82").unwrap().len(), 1);
}

#[test]
fn missing_size_update_after_settings_shrink() {
    let mut decoder = Decoder::new(4096);
    decoder.decode_to_vec(&hex("40 01 61 01 62")).unwrap();
    decoder.set_max_table_size(100);
    assert_eq!(
        decoder.decode_to_vec(&hex("82")),
        Err(DecodeError::MissingSizeUpdate)
    );

    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(100);
    // 31 + 69 = 100.
    assert_eq!(decoder.decode_to_vec(&hex("3f 45 82")).unwrap().len(), 1);
    assert_eq!(decoder.table().max_size(), 100);
    // Growing the limit asks for nothing.
    decoder.set_max_table_size(200);
    assert_eq!(decoder.decode_to_vec(&hex("82")).unwrap().len(), 1);
}

#[test]
fn missing_size_update_after_settings_dip() {
    // Entry "a: b" (34 bytes), then our limit dips to 20 and recovers to 4096 before
    // the peer's next block: the peer must signal the dip, since its encoder evicted.
    let dipped = || {
        let mut decoder = Decoder::new(4096);
        decoder.decode_to_vec(&hex("40 01 61 01 62")).unwrap();
        decoder.set_max_table_size(20);
        decoder.set_max_table_size(4096);
        decoder
    };
    assert_eq!(
        dipped().decode_to_vec(&hex("82")),
        Err(DecodeError::MissingSizeUpdate)
    );
    // The final size alone is not enough, nor is a size above the dip.
    assert_eq!(
        dipped().decode_to_vec(&hex("3f e1 1f 82")),
        Err(DecodeError::MissingSizeUpdate)
    );
    assert_eq!(
        dipped().decode_to_vec(&hex("3f 05 82")),
        Err(DecodeError::MissingSizeUpdate)
    );
    // The minimum then the final size: the entry is evicted, the table regrows.
    let mut decoder = dipped();
    assert_eq!(
        decoder.decode_to_vec(&hex("34 3f e1 1f 82")).unwrap().len(),
        1
    );
    assert!(decoder.table().is_empty());
    assert_eq!(decoder.table().max_size(), 4096);
    // Satisfied once, not required again.
    assert_eq!(decoder.decode_to_vec(&hex("82")).unwrap().len(), 1);
}

#[test]
fn missing_size_update_in_empty_block() {
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(0);
    assert_eq!(
        decoder.decode_to_vec(&[]),
        Err(DecodeError::MissingSizeUpdate)
    );
    let mut decoder = Decoder::new(4096);
    decoder.set_max_table_size(0);
    assert_eq!(decoder.decode_to_vec(&hex("20")), Ok(Vec::new()));
}

#[test]
fn no_size_update_required_when_table_already_small() {
    let mut decoder = Decoder::new(4096);
    // The peer shrank its own table to 0 first.
    decoder.decode_to_vec(&hex("20 82")).unwrap();
    decoder.set_max_table_size(100);
    assert_eq!(decoder.decode_to_vec(&hex("82")).unwrap().len(), 1);
}

#[test]
fn integer_with_endless_continuation_fails_fast() {
    // An indexed field whose index never ends: rejected after five continuation
    // bytes, long before the end of the block (which would be `Truncated`).
    let mut block = vec![0xff];
    block.resize(64 * 1024, 0x80);
    assert_eq!(
        Decoder::new(4096).decode_to_vec(&block),
        Err(DecodeError::IntegerOverflow)
    );
    // The same in a string length and in a size update.
    let mut block = vec![0x00, 0x7f];
    block.resize(64 * 1024, 0x80);
    assert_eq!(
        Decoder::new(4096).decode_to_vec(&block),
        Err(DecodeError::IntegerOverflow)
    );
    let mut block = vec![0x3f];
    block.resize(64 * 1024, 0x80);
    assert_eq!(
        Decoder::new(4096).decode_to_vec(&block),
        Err(DecodeError::IntegerOverflow)
    );
}

#[test]
fn huge_declared_string_length() {
    // A name declared u32::MAX bytes long, with one byte present.
    assert_eq!(
        decode("00 7f 80 ff ff ff 0f 61"),
        Err(DecodeError::StringPastEnd {
            len: u32::MAX as usize,
            available: 1
        })
    );
    // Within the block but over the header-list bound: refused before copying.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_header_list_size(64);
    let mut block = hex("00 01 61 7f 81 ff 03");
    block.resize(block.len() + 65_536, b'x');
    assert_eq!(
        decoder.decode_to_vec(&block),
        Err(DecodeError::HeaderListTooLarge { limit: 64 })
    );
}

#[test]
fn size_update_evicts() {
    let mut decoder = Decoder::new(4096);
    decoder
        .decode_to_vec(&hex("40 01 61 01 62 40 01 63 01 64"))
        .unwrap();
    assert_eq!(decoder.table().len(), 2);
    // Shrink to 34 (one entry), then restore.
    decoder.decode_to_vec(&hex("3f 03 3f e1 1f")).unwrap();
    assert_eq!(decoder.table().len(), 1);
    assert_eq!(decoder.table().iter().next(), Some((&b"c"[..], &b"d"[..])));
}

#[test]
fn header_list_too_large_on_indexed_fields() {
    let mut decoder = Decoder::new(4096);
    // :method GET counts 7 + 3 + 32 = 42; :path / counts 38.
    decoder.set_max_header_list_size(80);
    assert_eq!(decoder.decode_to_vec(&hex("82 84")).unwrap().len(), 2);
    decoder.set_max_header_list_size(79);
    assert_eq!(
        decoder.decode_to_vec(&hex("82 84")),
        Err(DecodeError::HeaderListTooLarge { limit: 79 })
    );
}

#[test]
fn header_list_too_large_stops_before_copying() {
    let mut decoder = Decoder::new(4096);
    decoder.set_max_header_list_size(100);
    // A literal whose value alone is 1000 (127 + 0x369) bytes: rejected before it
    // is copied.
    let mut block = hex("00 01 61 7f e9 06");
    block.extend(std::iter::repeat_n(b'x', 1000));
    assert_eq!(
        decoder.decode_to_vec(&block),
        Err(DecodeError::HeaderListTooLarge { limit: 100 })
    );

    // The same through Huffman: 160 'a's (5 bits each) fit in 100 encoded bytes,
    // which would be within the bound were it counted in encoded bytes.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_header_list_size(100);
    let value = vec![b'a'; 160];
    let mut block = Vec::new();
    hpack::Encoder::new().encode([Field::new(b"x-long", &value)], &mut block);
    assert!(block.len() < 110);
    assert_eq!(
        decoder.decode_to_vec(&block),
        Err(DecodeError::HeaderListTooLarge { limit: 100 })
    );
}

#[test]
fn header_list_bound_counts_fields_not_block_bytes() {
    // Many repetitions of a one-byte indexed field must hit the bound early.
    let mut decoder = Decoder::new(4096);
    decoder.set_max_header_list_size(1000);
    let block = vec![0x82; 10_000];
    let mut seen = 0;
    let result = decoder.decode(&block, |_field| {
        seen += 1;
        Ok::<(), DecodeError>(())
    });
    assert_eq!(result, Err(DecodeError::HeaderListTooLarge { limit: 1000 }));
    assert_eq!(seen, 1000 / 42);
}

#[test]
fn callback_can_refuse() {
    #[derive(Debug, PartialEq)]
    enum MyError {
        Hpack(DecodeError),
        Refused,
    }
    impl From<DecodeError> for MyError {
        fn from(e: DecodeError) -> Self {
            Self::Hpack(e)
        }
    }

    let mut decoder = Decoder::new(4096);
    let mut seen = Vec::new();
    let result = decoder.decode(&hex("82 86 84"), |field| {
        seen.push(field.to_header());
        if field.name == b":scheme" {
            Err(MyError::Refused)
        } else {
            Ok(())
        }
    });
    assert_eq!(result, Err(MyError::Refused));
    assert_eq!(seen.len(), 2);

    let result = decoder.decode(&hex("80"), |_| Ok::<(), MyError>(()));
    assert_eq!(result, Err(MyError::Hpack(DecodeError::ZeroIndex)));
}

#[test]
fn errors_name_the_fault() {
    let cases = [
        (DecodeError::Truncated, "truncated"),
        (DecodeError::IntegerOverflow, "integer"),
        (
            DecodeError::StringPastEnd {
                len: 5,
                available: 2,
            },
            "string length 5",
        ),
        (DecodeError::HuffmanEos, "EOS"),
        (DecodeError::HuffmanPaddingTooLong, "padding longer"),
        (DecodeError::HuffmanPaddingNotOnes, "not all ones"),
        (DecodeError::ZeroIndex, "index 0"),
        (DecodeError::IndexOutOfRange(70), "index 70"),
        (
            DecodeError::SizeUpdateTooLarge {
                requested: 9,
                limit: 8,
            },
            "update to 9",
        ),
        (DecodeError::SizeUpdateNotAtStart, "after the start"),
        (DecodeError::MissingSizeUpdate, "required"),
        (DecodeError::HeaderListTooLarge { limit: 10 }, "10-byte"),
    ];
    for (error, needle) in cases {
        let text = error.to_string();
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}
