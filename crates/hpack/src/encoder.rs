//! Header block encoding (RFC 7541 sections 4.2 and 6).

use crate::static_table::{self, Match};
use crate::table::DynamicTable;
use crate::{DEFAULT_TABLE_SIZE, Field, integer, string};

/// Names whose values change on nearly every message, so indexing them would only
/// churn the table and evict entries that do repeat. `date` is not among them: it
/// changes once a second, so indexed it is one byte in every other message of that
/// second, for one new entry.
const UNINDEXED_NAMES: [&[u8]; 4] = [b":path", b"content-length", b"x-request-id", b"traceparent"];

/// The encoder never uses more table than this, however much the peer offers: beyond
/// it, the memory held per connection grows faster than the compression gained.
const MAX_TABLE_SIZE: usize = 64 * 1024;

/// Values longer than this are sent as literals: they are rarely repeated verbatim
/// and would evict many small entries that are.
const MAX_INDEXED_VALUE_LEN: usize = 256;

/// Encodes header blocks for one peer, keeping a dynamic table in step with the
/// peer's decoder.
///
/// Indexing policy, applied per field in order:
///
/// 1. Sensitive fields are written never-indexed (RFC 7541 section 6.2.3), with the
///    name as an index when one exists, and never enter the table.
/// 2. A field equal to a static or dynamic entry is written as that index.
/// 3. A field is added to the dynamic table (literal with incremental indexing)
///    unless its name is `:path`, `content-length`, `x-request-id` or `traceparent`, its
///    value is longer than 256 bytes, or it would take more than half the table,
///    since any of those would mostly evict entries worth keeping.
/// 4. Otherwise it is a literal without indexing.
///
/// Names reuse a static index before a dynamic one, because static indices never
/// go stale. Each string is Huffman-coded only when that is strictly shorter, unless
/// Huffman coding is turned off ([`Encoder::set_huffman`]).
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    huffman: bool,
    /// Table-size changes not yet signalled to the peer: the smallest size reached
    /// and the latest size, per RFC 7541 section 4.2.
    pending_resize: Option<Resize>,
}

#[derive(Clone, Copy, Debug)]
struct Resize {
    smallest: usize,
    latest: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// Creates an encoder assuming RFC 7540's initial SETTINGS_HEADER_TABLE_SIZE of
    /// 4096, the size the peer's decoder starts with.
    pub fn new() -> Self {
        Self {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            huffman: true,
            pending_resize: None,
        }
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE (capped at 64 KiB). The change
    /// is signalled at the start of the next block; if the size dipped and recovered
    /// between blocks, both the minimum and the final size are sent so the peer
    /// evicts what we evicted.
    pub fn set_max_table_size(&mut self, max_table_size: usize) {
        let max_table_size = max_table_size.min(MAX_TABLE_SIZE);
        let current = self.table.max_size();
        let smallest = match self.pending_resize {
            Some(resize) => resize.smallest.min(max_table_size),
            None => current.min(max_table_size),
        };
        self.pending_resize = if smallest == current && max_table_size == current {
            None
        } else {
            Some(Resize {
                smallest,
                latest: max_table_size,
            })
        };
    }

    /// Whether string literals are Huffman-coded (where that is shorter). Off, every
    /// literal goes raw: the values that change on every message (a path, a request id)
    /// then cost a copy instead of a coding, bit by bit, per message. That suits a hop
    /// where CPU is dearer than bytes, such as a proxy's own link to its backends.
    pub fn set_huffman(&mut self, huffman: bool) {
        self.huffman = huffman;
    }

    /// The dynamic table, for checking it against the peer's decoder in tests and
    /// for metrics.
    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Appends one header block encoding `fields` to `dst`.
    pub fn encode<'a, I>(&mut self, fields: I, dst: &mut Vec<u8>)
    where
        I: IntoIterator<Item = Field<'a>>,
    {
        if let Some(Resize { smallest, latest }) = self.pending_resize.take() {
            if smallest < latest && smallest < self.table.max_size() {
                integer::encode(smallest, 5, 0x20, dst);
                self.table.set_max_size(smallest);
            }
            integer::encode(latest, 5, 0x20, dst);
            self.table.set_max_size(latest);
        }
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    fn encode_field(&mut self, field: Field<'_>, dst: &mut Vec<u8>) {
        let static_match = static_table::find(field.name, field.value);
        if let (Some(Match::Full(index)), false) = (static_match, field.sensitive) {
            integer::encode(index, 7, 0x80, dst);
            return;
        }
        let dynamic_match = self.table.find(field.name, field.value);
        let dynamic_index = |(position, _): (usize, bool)| static_table::LEN + 1 + position;

        let name_index = match (static_match, dynamic_match) {
            (_, Some(found @ (_, true))) if !field.sensitive => {
                integer::encode(dynamic_index(found), 7, 0x80, dst);
                return;
            }
            (Some(Match::Full(index) | Match::Name(index)), _) => Some(index),
            (None, Some(found)) => Some(dynamic_index(found)),
            (None, None) => None,
        };

        let (prefix_bits, flags, index) = if field.sensitive {
            (4, 0x10, false)
        } else if self.worth_indexing(&field) {
            (6, 0x40, true)
        } else {
            (4, 0x00, false)
        };

        match name_index {
            Some(name_index) => integer::encode(name_index, prefix_bits, flags, dst),
            None => {
                integer::encode(0, prefix_bits, flags, dst);
                self.write_string(field.name, dst);
            }
        }
        self.write_string(field.value, dst);

        if index {
            self.table.insert(field.name, field.value);
        }
    }

    fn write_string(&self, value: &[u8], dst: &mut Vec<u8>) {
        if self.huffman {
            string::write(value, dst);
        } else {
            string::write_raw(value, dst);
        }
    }

    fn worth_indexing(&self, field: &Field<'_>) -> bool {
        !UNINDEXED_NAMES.contains(&field.name)
            && field.value.len() <= MAX_INDEXED_VALUE_LEN
            && field.size() <= self.table.max_size() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(encoder: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut dst = Vec::new();
        let fields = fields
            .iter()
            .map(|(n, v)| Field::new(n.as_bytes(), v.as_bytes()));
        encoder.encode(fields, &mut dst);
        dst
    }

    #[test]
    fn a_date_repeated_within_its_second_is_one_byte() {
        let mut encoder = Encoder::new();
        let date = [("date", "Mon, 07 Dec 2026 03:11:19 GMT")];
        assert!(block(&mut encoder, &date).len() > 20);
        assert_eq!(block(&mut encoder, &date), [0x80 | 62]);
    }

    #[test]
    fn per_message_values_stay_out_of_the_table() {
        let mut encoder = Encoder::new();
        let unique = [
            (":path", "/a/1"),
            ("content-length", "12"),
            ("x-request-id", "0b6c1f3e-3f5e-4c1e-9f4a-1d2e3f4a5b6c"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ];
        block(&mut encoder, &unique);
        assert!(encoder.table().is_empty());
        block(&mut encoder, &[("server", "sekisho")]);
        assert_eq!(encoder.table().len(), 1);
    }

    #[test]
    fn without_huffman_every_literal_is_raw_and_decodes_the_same() {
        let fields = [
            (":path", "/shoes/recommendation?size=42"),
            ("x-request-id", "0b6c1f3e-3f5e-4c1e-9f4a-1d2e3f4a5b6c"),
            ("x-custom", "www.example.com"),
        ];
        let mut coded = Encoder::new();
        let mut raw = Encoder::new();
        raw.set_huffman(false);
        let coded_block = block(&mut coded, &fields);
        let raw_block = block(&mut raw, &fields);
        assert!(
            raw_block.len() > coded_block.len(),
            "raw {} bytes, Huffman-coded {}",
            raw_block.len(),
            coded_block.len()
        );
        // No string literal carries the Huffman flag, and each value is there verbatim.
        for (_, value) in fields {
            let at = raw_block
                .windows(value.len())
                .position(|w| w == value.as_bytes())
                .expect("the value, raw");
            assert_eq!(
                usize::from(raw_block[at - 1]),
                value.len(),
                "raw length prefix"
            );
        }
        let decoded = crate::Decoder::new(4096)
            .decode_to_vec(&raw_block)
            .expect("decodes");
        let decoded: Vec<(&[u8], &[u8])> = decoded
            .iter()
            .map(|h| (h.name.as_slice(), h.value.as_slice()))
            .collect();
        let sent: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(decoded, sent);
    }
}
