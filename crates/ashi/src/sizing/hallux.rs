//! Screening bands for the big-toe (hallux) angle. They flag a foot for a closer look by a
//! professional; they are never a diagnosis, and everything that shows them says so.

/// Screening band of a hallux angle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalluxBand {
    /// Under 20 degrees.
    Normal,
    /// 20 to under 30 degrees.
    Mild,
    /// 30 to under 40 degrees.
    Moderate,
    /// 40 degrees and more.
    Marked,
}

/// The sentence shown with every band.
pub const SCREENING_NOTE: &str = "Screening result from the scan's big-toe angle, not a diagnosis; \
     see a foot-care professional about pain or a band above normal.";

/// Places a hallux angle in its band.
pub fn band(angle_deg: f64) -> HalluxBand {
    if angle_deg < 20.0 {
        HalluxBand::Normal
    } else if angle_deg < 30.0 {
        HalluxBand::Mild
    } else if angle_deg < 40.0 {
        HalluxBand::Moderate
    } else {
        HalluxBand::Marked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_edges() {
        assert_eq!(band(0.0), HalluxBand::Normal);
        assert_eq!(band(19.9), HalluxBand::Normal);
        assert_eq!(band(20.0), HalluxBand::Mild);
        assert_eq!(band(29.9), HalluxBand::Mild);
        assert_eq!(band(30.0), HalluxBand::Moderate);
        assert_eq!(band(39.9), HalluxBand::Moderate);
        assert_eq!(band(40.0), HalluxBand::Marked);
    }
}
