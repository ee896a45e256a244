//! Sizing rules: pure functions from foot dimensions to sizes, shapes and fits. No I/O here, so
//! every rule is unit-tested on its own.

pub mod arch;
pub mod diagnose;
pub mod hallux;
pub mod jis;
pub mod recommend;
pub mod toe;

/// Rounds millimetres (and degrees) to a tenth, the precision feet are measured to. Answers
/// are built from values rounded where they are computed: binary arithmetic on measured
/// values leaves noise (`265.3 - 262.4` is `2.900000000000034`), which would otherwise show in
/// every answer, and a margin on the edge of a window would be judged on that noise rather
/// than on the value the answer shows.
pub fn to_tenth(value: f64) -> f64 {
    round_to(value, 10.0)
}

/// Rounds a ratio (the arch height index, a confidence) to three decimals, the precision the
/// arch index cut-offs are published with.
pub fn to_thousandth(value: f64) -> f64 {
    round_to(value, 1000.0)
}

fn round_to(value: f64, steps_per_unit: f64) -> f64 {
    // Dividing the rounded count gives the double nearest the decimal value, which prints as
    // that decimal; adding 0.0 turns -0.0 into 0.0.
    (value * steps_per_unit).round() / steps_per_unit + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_leaves_the_decimal_and_no_noise() {
        let margin = 265.3 - 262.4;
        assert_ne!(margin, 2.9);
        assert_eq!(to_tenth(margin), 2.9);
        assert_eq!(to_tenth(margin).to_string(), "2.9");
        assert_eq!(to_tenth(-0.04).to_string(), "0");
        assert_eq!(to_tenth(12.25), 12.3);
        assert_eq!(to_thousandth(68.0 / 185.0), 0.368);
    }
}
