//! Header block decoding (RFC 7541 sections 3, 4.2 and 6).

use crate::representation::Representation;
use crate::string::Literal;
use crate::table::DynamicTable;
use crate::{DecodeError, ENTRY_OVERHEAD, Field, Header, integer, static_table, string};

/// Huffman-coded values up to this many bytes are remembered, decoded, for the next
/// field: a value sent without indexing on every message (a client that never indexes
/// `:path`, say) is then a comparison and a copy instead of a decoding, bit by bit.
const MEMO_MAX: usize = 128;

/// Decodes header blocks from one peer, keeping its dynamic table in step.
///
/// Memory is bounded by construction: a block can make the decoder hold at most its
/// dynamic-table limit plus the caller's header-list bound, because every string is
/// checked against the remaining header-list budget before (or, for Huffman
/// strings, while) it is copied. Work is bounded too: every field costs at least 32
/// bytes of that budget, and every integer at most six bytes of input.
///
/// After any error the table may be out of step with the peer's, so the connection
/// must be closed with `COMPRESSION_ERROR` and the decoder dropped.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE as acknowledged by the peer: the ceiling for
    /// the peer's size updates.
    max_table_size: usize,
    /// The smallest SETTINGS_HEADER_TABLE_SIZE applied since the last block, while it
    /// is below the table's current maximum: the next block must open with a size
    /// update at or below it (RFC 7541 section 4.2).
    required_update: Option<usize>,
    max_header_list_size: usize,
    /// Scratch space for literal names and values, reused across fields so decoding
    /// does not allocate per field once warmed up.
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// The last Huffman-coded value decoded (at most [`MEMO_MAX`] bytes), as sent and
    /// as decoded.
    memo: Memo,
}

#[derive(Debug, Default)]
struct Memo {
    coded: Vec<u8>,
    decoded: Vec<u8>,
}

impl Decoder {
    /// The header-list bound used until [`Decoder::set_max_header_list_size`] is
    /// called; 16 KiB is the common server default and ample for real requests.
    pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 16 * 1024;

    /// Creates a decoder whose dynamic table starts at `max_table_size`, which is also
    /// the ceiling for the peer's size updates. On an HTTP/2 connection that is
    /// [`crate::DEFAULT_TABLE_SIZE`], the size both ends assume before SETTINGS.
    pub fn new(max_table_size: usize) -> Self {
        Self {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            required_update: None,
            max_header_list_size: Self::DEFAULT_MAX_HEADER_LIST_SIZE,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            memo: Memo::default(),
        }
    }

    /// Gives back the scratch buffers and the remembered value, for a connection gone
    /// quiet: they hold up to the largest field the peer ever sent.
    pub fn shrink_idle(&mut self) {
        self.name_buf = Vec::new();
        self.value_buf = Vec::new();
        self.memo = Memo::default();
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE once the peer has acknowledged it.
    ///
    /// If the new limit is below the table's current maximum, the peer must open its
    /// next block with a size update no larger than the smallest limit applied since
    /// its last block (RFC 7541 section 4.2); a block that does not is rejected with
    /// [`DecodeError::MissingSizeUpdate`].
    pub fn set_max_table_size(&mut self, max_table_size: usize) {
        self.max_table_size = max_table_size;
        if max_table_size < self.table.max_size() {
            let floor = self
                .required_update
                .map_or(max_table_size, |f| f.min(max_table_size));
            self.required_update = Some(floor);
        }
    }

    /// Sets the bound on a decoded header list, counted as SETTINGS_MAX_HEADER_LIST_SIZE
    /// counts it (name + value + 32 per field). A block that exceeds it fails with
    /// [`DecodeError::HeaderListTooLarge`] before the excess is allocated.
    pub fn set_max_header_list_size(&mut self, max_header_list_size: usize) {
        self.max_header_list_size = max_header_list_size;
    }

    /// The current header-list bound, for callers that advertise it in SETTINGS.
    pub fn max_header_list_size(&self) -> usize {
        self.max_header_list_size
    }

    /// The dynamic table, for checking it against the peer's encoder in tests and
    /// for metrics.
    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one complete header block (HEADERS plus any CONTINUATION payloads),
    /// handing each field to `on_field` in order.
    ///
    /// Fields borrow the decoder's buffers, so the callback copies only what it
    /// keeps. Returning an error from the callback stops decoding at once and is
    /// passed through; the decoder is then out of step like after any other error.
    pub fn decode<E, F>(&mut self, block: &[u8], mut on_field: F) -> Result<(), E>
    where
        E: From<DecodeError>,
        F: FnMut(Field<'_>) -> Result<(), E>,
    {
        let mut pos = self.decode_size_updates(block)?;
        let mut remaining = self.max_header_list_size;
        while pos < block.len() {
            remaining = self.decode_field(block, &mut pos, remaining, &mut on_field)?;
        }
        Ok(())
    }

    /// Decodes one header block into owned headers; for callers that keep them all.
    pub fn decode_to_vec(&mut self, block: &[u8]) -> Result<Vec<Header>, DecodeError> {
        let mut headers = Vec::new();
        self.decode(block, |field| {
            headers.push(field.to_header());
            Ok::<(), DecodeError>(())
        })?;
        Ok(headers)
    }

    /// Applies the size updates that open a block and checks that any update our
    /// SETTINGS require was among them. Returns the position of the first field.
    fn decode_size_updates(&mut self, block: &[u8]) -> Result<usize, DecodeError> {
        let mut pos = 0;
        while let Some(&first) = block.get(pos) {
            if Representation::of(first) != Representation::SizeUpdate {
                break;
            }
            let requested = integer::decode(5, block, &mut pos)?;
            if requested > self.max_table_size {
                return Err(DecodeError::SizeUpdateTooLarge {
                    requested,
                    limit: self.max_table_size,
                });
            }
            if self.required_update.is_some_and(|floor| requested <= floor) {
                self.required_update = None;
            }
            self.table.set_max_size(requested);
        }
        if self.required_update.is_some() {
            return Err(DecodeError::MissingSizeUpdate);
        }
        Ok(pos)
    }

    /// Decodes the field representation at `block[*pos]`, hands it to `on_field` and
    /// returns the header-list budget left after it.
    fn decode_field<E, F>(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        remaining: usize,
        on_field: &mut F,
    ) -> Result<usize, E>
    where
        E: From<DecodeError>,
        F: FnMut(Field<'_>) -> Result<(), E>,
    {
        let too_large = DecodeError::HeaderListTooLarge {
            limit: self.max_header_list_size,
        };
        let first = *block.get(*pos).ok_or(DecodeError::Truncated)?;
        let (prefix_bits, indexing, sensitive) = match Representation::of(first) {
            Representation::SizeUpdate => return Err(DecodeError::SizeUpdateNotAtStart.into()),
            Representation::Indexed => {
                let index = integer::decode(7, block, pos)?;
                let (name, value) = lookup(&self.table, index)?;
                let field = Field::new(name, value);
                let remaining = remaining.checked_sub(field.size()).ok_or(too_large)?;
                on_field(field)?;
                return Ok(remaining);
            }
            Representation::LiteralIndexed => (6, true, false),
            Representation::LiteralUnindexed => (4, false, false),
            Representation::LiteralNeverIndexed => (4, false, true),
        };

        // The budget is checked before each string is copied, not after.
        let over_budget = |error| match error {
            DecodeError::HeaderListTooLarge { .. } => too_large.clone(),
            other => other,
        };
        let budget = remaining
            .checked_sub(ENTRY_OVERHEAD)
            .ok_or(too_large.clone())?;
        let name_index = integer::decode(prefix_bits, block, pos)?;
        self.name_buf.clear();
        if name_index == 0 {
            string::read(block, pos, &mut self.name_buf, budget).map_err(over_budget)?;
        } else {
            let (name, _) = lookup(&self.table, name_index)?;
            if name.len() > budget {
                return Err(too_large.clone().into());
            }
            self.name_buf.extend_from_slice(name);
        }

        let budget = budget - self.name_buf.len();
        self.value_buf.clear();
        let value = Literal::at(block, pos)?;
        if value.huffman && value.bytes == self.memo.coded {
            if self.memo.decoded.len() > budget {
                return Err(too_large.into());
            }
            self.value_buf.extend_from_slice(&self.memo.decoded);
        } else {
            value
                .decode_into(&mut self.value_buf, budget)
                .map_err(over_budget)?;
            if value.huffman && value.bytes.len() <= MEMO_MAX {
                self.memo.coded.clear();
                self.memo.coded.extend_from_slice(value.bytes);
                self.memo.decoded.clear();
                self.memo.decoded.extend_from_slice(&self.value_buf);
            }
        }
        let remaining = budget - self.value_buf.len();

        if indexing {
            // The name was copied out first, so evicting the entry it came from is safe
            // (RFC 7541 section 4.4).
            self.table.insert(&self.name_buf, &self.value_buf);
        }
        on_field(Field {
            name: &self.name_buf,
            value: &self.value_buf,
            sensitive,
        })?;
        Ok(remaining)
    }
}

/// Resolves a 1-based index over the static table followed by the dynamic table.
fn lookup(table: &DynamicTable, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    if index == 0 {
        return Err(DecodeError::ZeroIndex);
    }
    if let Some(entry) = static_table::get(index) {
        return Ok(entry);
    }
    table
        .get(index - static_table::LEN - 1)
        .ok_or(DecodeError::IndexOutOfRange(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoder;

    /// A block of `fields`, with `:path` sent as a Huffman-coded literal that is never
    /// indexed, as some clients send it on every request.
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut dst = Vec::new();
        Encoder::new().encode(
            fields
                .iter()
                .map(|(n, v)| crate::Field::new(n.as_bytes(), v.as_bytes())),
            &mut dst,
        );
        dst
    }

    fn values(decoder: &mut Decoder, block: &[u8]) -> Result<Vec<String>, DecodeError> {
        let headers = decoder.decode_to_vec(block)?;
        Ok(headers
            .into_iter()
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect())
    }

    #[test]
    fn a_value_repeated_as_sent_decodes_the_same_each_time() {
        let call = block(&[(":path", "/grpc.testing.TestService/UnaryCall")]);
        let other = block(&[(":path", "/grpc.testing.TestService/EmptyCall")]);
        assert_eq!(call[1] & 0x80, 0x80, "the value is Huffman-coded");
        let mut decoder = Decoder::new(4096);
        for (block, path) in [
            (&call, "/grpc.testing.TestService/UnaryCall"),
            (&call, "/grpc.testing.TestService/UnaryCall"),
            (&other, "/grpc.testing.TestService/EmptyCall"),
            (&call, "/grpc.testing.TestService/UnaryCall"),
        ] {
            assert_eq!(values(&mut decoder, block), Ok(vec![path.to_owned()]));
        }
        assert!(decoder.table().is_empty(), ":path is never indexed");
    }

    #[test]
    fn a_remembered_value_still_counts_against_the_list_bound() {
        let call = block(&[(":path", "/grpc.testing.TestService/UnaryCall")]);
        let mut decoder = Decoder::new(4096);
        assert!(values(&mut decoder, &call).is_ok());
        // 5 + 35 + 32 bytes: one short of the field.
        decoder.set_max_header_list_size(71);
        assert_eq!(
            values(&mut decoder, &call),
            Err(DecodeError::HeaderListTooLarge { limit: 71 })
        );
    }

    #[test]
    fn shrink_idle_forgets_and_decoding_goes_on() {
        let call = block(&[(":path", "/grpc.testing.TestService/UnaryCall")]);
        let mut decoder = Decoder::new(4096);
        assert!(values(&mut decoder, &call).is_ok());
        decoder.shrink_idle();
        assert_eq!(decoder.memo.coded.capacity(), 0);
        assert_eq!(
            values(&mut decoder, &call),
            Ok(vec!["/grpc.testing.TestService/UnaryCall".to_owned()])
        );
    }
}
