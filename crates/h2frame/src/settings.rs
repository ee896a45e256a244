//! SETTINGS parameters (RFC 9113 section 6.5): parsing, validation, and the
//! values in force on a connection.

use crate::error::{Error, ErrorCode};

/// Smallest value SETTINGS_MAX_FRAME_SIZE may take, and its initial value.
pub const MIN_MAX_FRAME_SIZE: u32 = 1 << 14;
/// Largest value SETTINGS_MAX_FRAME_SIZE may take: what 24 length bits can say.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// Largest flow-control window (RFC 9113 section 6.9.1).
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// Size of one parameter on the wire: 16-bit identifier, 32-bit value.
pub(crate) const PARAM_LEN: usize = 6;

const HEADER_TABLE_SIZE: u16 = 0x1;
const ENABLE_PUSH: u16 = 0x2;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The parameters one SETTINGS frame carries, already validated.
///
/// A struct of options rather than a list: a frame only changes what it names,
/// a repeated identifier takes its last value (the RFC processes them in order),
/// and unknown identifiers are dropped as RFC 9113 section 6.5.2 requires. The
/// struct is small and `Copy`, so parsing a SETTINGS frame never allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK table the sender's decoder allows.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH: whether the sender accepts PUSH_PROMISE.
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: how many streams the sender lets us open.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE: the window new streams start with;
    /// at most [`MAX_WINDOW_SIZE`].
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE: the largest payload the sender accepts; within
    /// [`MIN_MAX_FRAME_SIZE`]`..=`[`MAX_MAX_FRAME_SIZE`].
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: advisory bound on a decoded field section.
    pub max_header_list_size: Option<u32>,
}

impl Settings {
    /// Parses and validates a SETTINGS payload whose length is already known to
    /// be a multiple of [`PARAM_LEN`].
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, Error> {
        let mut settings = Self::default();
        for param in payload.chunks_exact(PARAM_LEN) {
            let [i0, i1, v0, v1, v2, v3] = *param else {
                continue;
            };
            let value = u32::from_be_bytes([v0, v1, v2, v3]);
            match u16::from_be_bytes([i0, i1]) {
                HEADER_TABLE_SIZE => settings.header_table_size = Some(value),
                ENABLE_PUSH => {
                    settings.enable_push = Some(match value {
                        0 => false,
                        1 => true,
                        _ => {
                            return Err(Error::connection(
                                ErrorCode::PROTOCOL_ERROR,
                                "SETTINGS_ENABLE_PUSH is neither 0 nor 1",
                            ));
                        }
                    });
                }
                MAX_CONCURRENT_STREAMS => settings.max_concurrent_streams = Some(value),
                INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW_SIZE {
                        return Err(Error::connection(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    settings.initial_window_size = Some(value);
                }
                MAX_FRAME_SIZE => {
                    if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                        return Err(Error::connection(
                            ErrorCode::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE outside 16384..=16777215",
                        ));
                    }
                    settings.max_frame_size = Some(value);
                }
                MAX_HEADER_LIST_SIZE => settings.max_header_list_size = Some(value),
                _ => {}
            }
        }
        Ok(settings)
    }

    /// The parameters that are set, as (identifier, value) pairs in identifier
    /// order: the order the writer puts them on the wire.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (u16, u32)> {
        [
            (HEADER_TABLE_SIZE, self.header_table_size),
            (ENABLE_PUSH, self.enable_push.map(u32::from)),
            (MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (INITIAL_WINDOW_SIZE, self.initial_window_size),
            (MAX_FRAME_SIZE, self.max_frame_size),
            (MAX_HEADER_LIST_SIZE, self.max_header_list_size),
        ]
        .into_iter()
        .filter_map(|(id, value)| Some((id, value?)))
    }

    /// Payload length these parameters take on the wire.
    pub(crate) fn encoded_len(&self) -> usize {
        self.pairs().count() * PARAM_LEN
    }

    /// Whether the frame would carry no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }
}

/// The values in force for one direction of a connection: RFC 9113 section 6.5.2
/// defaults until SETTINGS frames change them.
///
/// `None` for the two limits the RFC leaves unbounded by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// HPACK dynamic table size the peer's decoder allows (default 4096).
    pub header_table_size: u32,
    /// Whether server push is allowed (default true).
    pub enable_push: bool,
    /// Concurrent stream limit (default unbounded).
    pub max_concurrent_streams: Option<u32>,
    /// Initial stream window (default 65,535).
    pub initial_window_size: u32,
    /// Largest frame payload (default 16,384).
    pub max_frame_size: u32,
    /// Field section size limit (default unbounded).
    pub max_header_list_size: Option<u32>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: 65_535,
            max_frame_size: MIN_MAX_FRAME_SIZE,
            max_header_list_size: None,
        }
    }
}

impl ConnectionSettings {
    /// Applies one received (or acknowledged) SETTINGS frame: only the parameters
    /// it names change.
    pub fn apply(&mut self, update: &Settings) {
        if let Some(v) = update.header_table_size {
            self.header_table_size = v;
        }
        if let Some(v) = update.enable_push {
            self.enable_push = v;
        }
        if let Some(v) = update.max_concurrent_streams {
            self.max_concurrent_streams = Some(v);
        }
        if let Some(v) = update.initial_window_size {
            self.initial_window_size = v;
        }
        if let Some(v) = update.max_frame_size {
            self.max_frame_size = v;
        }
        if let Some(v) = update.max_header_list_size {
            self.max_header_list_size = Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(id: u16, value: u32) -> [u8; 6] {
        let [i0, i1] = id.to_be_bytes();
        let [v0, v1, v2, v3] = value.to_be_bytes();
        [i0, i1, v0, v1, v2, v3]
    }

    #[test]
    fn last_repeat_wins_and_unknown_ids_are_dropped() {
        let mut payload = Vec::new();
        payload.extend(param(MAX_CONCURRENT_STREAMS, 10));
        payload.extend(param(0xabcd, 7));
        payload.extend(param(MAX_CONCURRENT_STREAMS, 20));
        let settings = Settings::parse(&payload).unwrap();
        assert_eq!(
            settings,
            Settings {
                max_concurrent_streams: Some(20),
                ..Settings::default()
            }
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        for (id, value) in [
            (INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE),
            (MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE),
            (MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
            (ENABLE_PUSH, 0),
            (ENABLE_PUSH, 1),
        ] {
            assert!(Settings::parse(&param(id, value)).is_ok(), "{id} {value}");
        }
    }

    #[test]
    fn apply_changes_only_named_values() {
        let mut current = ConnectionSettings::default();
        current.apply(&Settings {
            initial_window_size: Some(1),
            max_header_list_size: Some(8192),
            ..Settings::default()
        });
        assert_eq!(
            current,
            ConnectionSettings {
                initial_window_size: 1,
                max_header_list_size: Some(8192),
                ..ConnectionSettings::default()
            }
        );
    }

    #[test]
    fn pairs_follow_identifier_order() {
        let settings = Settings {
            max_frame_size: Some(MIN_MAX_FRAME_SIZE),
            enable_push: Some(false),
            ..Settings::default()
        };
        let pairs: Vec<_> = settings.pairs().collect();
        assert_eq!(
            pairs,
            [(ENABLE_PUSH, 0), (MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE)]
        );
        assert_eq!(settings.encoded_len(), 12);
        assert!(Settings::default().is_empty());
    }
}
