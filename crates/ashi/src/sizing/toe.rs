//! Toe shape from how far each toe tip lies behind the foremost one.

/// The classic forefoot shapes shoe fitters use to pick a toe box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToeShape {
    /// Toe 1 is the longest.
    Egyptian,
    /// Toe 2 is longer than toe 1 by more than the tolerance.
    Greek,
    /// Toes 1 and 2 (and often 3) end within the tolerance of each other.
    Square,
}

/// Default tolerance within which two toe tips count as level.
pub const DEFAULT_TOLERANCE_MM: f64 = 2.0;

/// Classifies the forefoot. `offsets_mm[i]` is how far the tip of toe `i + 1` lies behind the
/// foremost toe tip, so a smaller offset means a longer toe.
pub fn classify(offsets_mm: &[f64; 5], tolerance_mm: f64) -> ToeShape {
    let toe2_ahead_by = offsets_mm[0] - offsets_mm[1];
    if toe2_ahead_by > tolerance_mm {
        ToeShape::Greek
    } else if toe2_ahead_by < -tolerance_mm {
        ToeShape::Egyptian
    } else {
        ToeShape::Square
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_toe_longest_is_egyptian() {
        assert_eq!(
            classify(&[0.0, 4.0, 9.0, 15.0, 24.0], 2.0),
            ToeShape::Egyptian
        );
    }

    #[test]
    fn second_toe_longer_beyond_tolerance_is_greek() {
        assert_eq!(classify(&[3.0, 0.0, 5.0, 12.0, 20.0], 2.0), ToeShape::Greek);
        // Exactly at the tolerance is still level.
        assert_eq!(
            classify(&[2.0, 0.0, 5.0, 12.0, 20.0], 2.0),
            ToeShape::Square
        );
    }

    #[test]
    fn level_toes_are_square() {
        assert_eq!(classify(&[0.0, 1.0, 1.5, 8.0, 16.0], 2.0), ToeShape::Square);
        assert_eq!(classify(&[1.0, 0.0, 1.0, 8.0, 16.0], 2.0), ToeShape::Square);
    }

    #[test]
    fn tolerance_is_configurable() {
        let toes = [3.0, 0.0, 5.0, 12.0, 20.0];
        assert_eq!(classify(&toes, 2.0), ToeShape::Greek);
        assert_eq!(classify(&toes, 4.0), ToeShape::Square);
    }
}
