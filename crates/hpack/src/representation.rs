//! The five representations a header block is made of (RFC 7541 section 6), told
//! apart by their leading bits.

/// What the first byte of a representation says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Representation {
    /// `1xxxxxxx`: a field from the static or dynamic table (section 6.1).
    Indexed,
    /// `01xxxxxx`: a literal that enters the dynamic table (section 6.2.1).
    LiteralIndexed,
    /// `001xxxxx`: a dynamic table size update (section 6.3).
    SizeUpdate,
    /// `0001xxxx`: a literal that no hop may index (section 6.2.3).
    LiteralNeverIndexed,
    /// `0000xxxx`: a literal left out of the table on this hop (section 6.2.2).
    LiteralUnindexed,
}

impl Representation {
    /// Classifies a representation by its first byte; every byte is one of the five.
    pub(crate) fn of(first: u8) -> Self {
        match first.leading_zeros() {
            0 => Self::Indexed,
            1 => Self::LiteralIndexed,
            2 => Self::SizeUpdate,
            3 => Self::LiteralNeverIndexed,
            _ => Self::LiteralUnindexed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_section_6() {
        assert_eq!(Representation::of(0x80), Representation::Indexed);
        assert_eq!(Representation::of(0xff), Representation::Indexed);
        assert_eq!(Representation::of(0x40), Representation::LiteralIndexed);
        assert_eq!(Representation::of(0x7f), Representation::LiteralIndexed);
        assert_eq!(Representation::of(0x20), Representation::SizeUpdate);
        assert_eq!(Representation::of(0x3f), Representation::SizeUpdate);
        assert_eq!(
            Representation::of(0x10),
            Representation::LiteralNeverIndexed
        );
        assert_eq!(
            Representation::of(0x1f),
            Representation::LiteralNeverIndexed
        );
        assert_eq!(Representation::of(0x00), Representation::LiteralUnindexed);
        assert_eq!(Representation::of(0x0f), Representation::LiteralUnindexed);
    }
}
