//! Arch type from the arch height index (AHI): dorsal height at 50% of foot length divided by
//! the truncated foot length (heel to the first metatarsophalangeal joint). Cut-offs from
//! Williams, McClay et al. (2001): high at 0.356 and above, low at 0.275 and below.

/// The three arch types of the AHI cut-offs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchType {
    Low,
    Normal,
    High,
}

/// AHI at or above which an arch is high.
pub const HIGH_AT_OR_ABOVE: f64 = 0.356;
/// AHI at or below which an arch is low.
pub const LOW_AT_OR_BELOW: f64 = 0.275;

/// Truncated foot length as a share of foot length, for feet measured without it: the mean
/// ball-of-foot length / foot length of the ANSUR II adults (0.740, n = 6,068).
pub const TRUNCATED_LENGTH_RATIO: f64 = 0.740;

/// An arch height index, to three decimals like the cut-offs it is classified by, and whether
/// its denominator was estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchIndex {
    pub value: f64,
    pub estimated: bool,
}

/// Computes the AHI, estimating the truncated length from the foot length when not measured.
pub fn index(
    arch_height_mm: f64,
    foot_length_mm: f64,
    ball_of_foot_length_mm: Option<f64>,
) -> ArchIndex {
    match ball_of_foot_length_mm {
        Some(truncated) => ArchIndex {
            value: super::to_thousandth(arch_height_mm / truncated),
            estimated: false,
        },
        None => ArchIndex {
            value: super::to_thousandth(arch_height_mm / (foot_length_mm * TRUNCATED_LENGTH_RATIO)),
            estimated: true,
        },
    }
}

/// Classifies an AHI by the Williams et al. cut-offs.
pub fn classify(ahi: f64) -> ArchType {
    if ahi >= HIGH_AT_OR_ABOVE {
        ArchType::High
    } else if ahi <= LOW_AT_OR_BELOW {
        ArchType::Low
    } else {
        ArchType::Normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_offs_are_inclusive() {
        assert_eq!(classify(0.356), ArchType::High);
        assert_eq!(classify(0.3559), ArchType::Normal);
        assert_eq!(classify(0.275), ArchType::Low);
        assert_eq!(classify(0.2751), ArchType::Normal);
    }

    #[test]
    fn measured_truncated_length_is_used() {
        // 64 mm over a 190 mm truncated length: 0.337, normal.
        let ahi = index(64.0, 260.0, Some(190.0));
        assert!(!ahi.estimated);
        assert_eq!(ahi.value, 0.337);
        assert_eq!(classify(ahi.value), ArchType::Normal);
    }

    #[test]
    fn truncated_length_is_estimated_when_missing() {
        // 250 mm foot: estimated truncated length 185 mm; 68 mm arch height gives 0.368.
        let ahi = index(68.0, 250.0, None);
        assert!(ahi.estimated);
        assert_eq!(ahi.value, 0.368);
        assert_eq!(classify(ahi.value), ArchType::High);
        // 50 mm on the same foot: 0.270, low.
        assert_eq!(classify(index(50.0, 250.0, None).value), ArchType::Low);
    }
}
