//! JIS S 5037 shoe sizes: foot length in 5 mm steps and a width class (A ... G) read from the
//! ball girth.
//!
//! The ball girth at the centre of class index `i` (A = 0 ... G = 9) for foot length `L` mm is
//! `189 + 0.6 (L - 200) + 6 i` in the men's table and `183 + 0.6 (L - 195) + 6 i` in the
//! women's. The men's table covers 20.0 A to 30.0 G, the women's 19.5 A to 27.0 EEEE.

use std::fmt;

/// Which of the two JIS S 5037 tables applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Men,
    Women,
}

/// A JIS width class, ordered from narrowest to widest girth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WidthClass {
    A,
    B,
    C,
    D,
    E,
    EE,
    EEE,
    EEEE,
    F,
    G,
}

impl WidthClass {
    /// Every class, in index order.
    pub const ALL: [WidthClass; 10] = [
        WidthClass::A,
        WidthClass::B,
        WidthClass::C,
        WidthClass::D,
        WidthClass::E,
        WidthClass::EE,
        WidthClass::EEE,
        WidthClass::EEEE,
        WidthClass::F,
        WidthClass::G,
    ];

    /// The class index `i` of the girth formula.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label printed on shoes.
    pub fn label(self) -> &'static str {
        match self {
            WidthClass::A => "A",
            WidthClass::B => "B",
            WidthClass::C => "C",
            WidthClass::D => "D",
            WidthClass::E => "E",
            WidthClass::EE => "EE",
            WidthClass::EEE => "EEE",
            WidthClass::EEEE => "EEEE",
            WidthClass::F => "F",
            WidthClass::G => "G",
        }
    }
}

impl fmt::Display for WidthClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Table {
    /// Smallest and largest size in the table, mm.
    pub fn length_range_mm(self) -> (u32, u32) {
        match self {
            Table::Men => (200, 300),
            Table::Women => (195, 270),
        }
    }

    /// The widest class the table lists.
    pub fn widest(self) -> WidthClass {
        match self {
            Table::Men => WidthClass::G,
            Table::Women => WidthClass::EEEE,
        }
    }

    /// Ball girth at the centre of `class` for a foot of `length_mm`, to 0.1 mm (whole mm
    /// at the table's sizes, where `0.6 x` a multiple of 5 is whole).
    pub fn class_girth_mm(self, length_mm: f64, class: WidthClass) -> f64 {
        let (base, origin) = match self {
            Table::Men => (189.0, 200.0),
            Table::Women => (183.0, 195.0),
        };
        super::to_tenth(base + 0.6 * (length_mm - origin) + 6.0 * class.index() as f64)
    }
}

/// Where a foot falls in a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JisSize {
    /// Inside the table.
    InTable {
        size_mm: u32,
        class: WidthClass,
        class_girth_mm: f64,
    },
    /// Outside it; `size_mm` is the foot length rounded to 5 mm all the same.
    Outside { size_mm: u32, reason: Outside },
}

/// Why a foot is outside the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    ShorterThanTable,
    LongerThanTable,
    GirthBelowNarrowest,
    GirthAboveWidest,
}

impl JisSize {
    /// Rounded foot length, mm.
    pub fn size_mm(&self) -> u32 {
        match *self {
            JisSize::InTable { size_mm, .. } | JisSize::Outside { size_mm, .. } => size_mm,
        }
    }

    /// The label a shoe shop would print, e.g. "25.5 EE", or why there is none.
    pub fn label(&self) -> String {
        match *self {
            JisSize::InTable { size_mm, class, .. } => format!("{} {class}", cm(size_mm)),
            JisSize::Outside { size_mm, reason } => {
                let why = match reason {
                    Outside::ShorterThanTable => "shorter than the table",
                    Outside::LongerThanTable => "longer than the table",
                    Outside::GirthBelowNarrowest => "ball girth below the narrowest class",
                    Outside::GirthAboveWidest => "ball girth above the widest class",
                };
                format!("outside JIS S 5037 ({} cm: {why})", cm(size_mm))
            }
        }
    }
}

/// "25.5" for 255 mm.
pub fn cm(size_mm: u32) -> String {
    format!("{}.{}", size_mm / 10, size_mm % 10)
}

/// Rounds a foot length to the nearest 5 mm step (halves round up).
pub fn round_to_step(length_mm: f64) -> u32 {
    ((length_mm / 5.0 + 0.5).floor() * 5.0).max(0.0) as u32
}

/// Places a foot in `table`: length to the nearest 5 mm, girth to the nearest class centre at
/// that length. A girth more than half a class (3 mm) beyond the outermost class centre is
/// outside the table.
pub fn classify(table: Table, length_mm: f64, ball_girth_mm: f64) -> JisSize {
    let size_mm = round_to_step(length_mm);
    let (shortest, longest) = table.length_range_mm();
    if size_mm < shortest {
        return JisSize::Outside {
            size_mm,
            reason: Outside::ShorterThanTable,
        };
    }
    if size_mm > longest {
        return JisSize::Outside {
            size_mm,
            reason: Outside::LongerThanTable,
        };
    }
    let nominal = f64::from(size_mm);
    let steps = (ball_girth_mm - table.class_girth_mm(nominal, WidthClass::A)) / 6.0;
    let index = (steps + 0.5).floor();
    if index < 0.0 {
        return JisSize::Outside {
            size_mm,
            reason: Outside::GirthBelowNarrowest,
        };
    }
    match WidthClass::ALL.get(index as usize) {
        Some(&class) if class <= table.widest() => JisSize::InTable {
            size_mm,
            class,
            class_girth_mm: table.class_girth_mm(nominal, class),
        },
        _ => JisSize::Outside {
            size_mm,
            reason: Outside::GirthAboveWidest,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_examples() {
        assert_eq!(Table::Men.class_girth_mm(250.0, WidthClass::E), 243.0);
        assert_eq!(Table::Women.class_girth_mm(235.0, WidthClass::E), 231.0);
    }

    #[test]
    fn men_250_e_classifies_as_e() {
        let size = classify(Table::Men, 250.0, 243.0);
        assert_eq!(
            size,
            JisSize::InTable {
                size_mm: 250,
                class: WidthClass::E,
                class_girth_mm: 243.0
            }
        );
        assert_eq!(size.label(), "25.0 E");
    }

    #[test]
    fn women_235_e_classifies_as_e() {
        assert_eq!(classify(Table::Women, 235.0, 231.0).label(), "23.5 E");
    }

    #[test]
    fn length_rounds_to_nearest_five_mm() {
        assert_eq!(round_to_step(252.4), 250);
        assert_eq!(round_to_step(252.5), 255);
        assert_eq!(round_to_step(257.6), 260);
    }

    #[test]
    fn girth_goes_to_nearest_class_centre() {
        // Men 26.0: A = 225, so D = 243 and E = 249; 245.9 is nearer D, 246.1 nearer E.
        assert_eq!(classify(Table::Men, 260.0, 245.9).label(), "26.0 D");
        assert_eq!(classify(Table::Men, 260.0, 246.1).label(), "26.0 E");
        // The girth is read at the rounded length: a 258 mm foot is a 26.0.
        assert_eq!(classify(Table::Men, 258.0, 249.0).label(), "26.0 E");
    }

    #[test]
    fn table_edges() {
        // Men 20.0 A = 189; half a class below is still A, more is outside.
        assert_eq!(classify(Table::Men, 200.0, 186.1).label(), "20.0 A");
        assert!(matches!(
            classify(Table::Men, 200.0, 185.0),
            JisSize::Outside {
                reason: Outside::GirthBelowNarrowest,
                ..
            }
        ));
        // Men 30.0 G = 189 + 60 + 54 = 303.
        assert_eq!(classify(Table::Men, 300.0, 305.9).label(), "30.0 G");
        assert!(matches!(
            classify(Table::Men, 300.0, 306.1),
            JisSize::Outside {
                reason: Outside::GirthAboveWidest,
                ..
            }
        ));
        // Women stop at EEEE: 27.0 EEEE = 183 + 45 + 42 = 270; F would be 276.
        assert_eq!(classify(Table::Women, 270.0, 272.0).label(), "27.0 EEEE");
        assert!(matches!(
            classify(Table::Women, 270.0, 275.0),
            JisSize::Outside {
                reason: Outside::GirthAboveWidest,
                ..
            }
        ));
        assert!(matches!(
            classify(Table::Women, 273.0, 250.0),
            JisSize::Outside {
                size_mm: 275,
                reason: Outside::LongerThanTable
            }
        ));
        assert!(matches!(
            classify(Table::Men, 197.0, 190.0),
            JisSize::Outside {
                size_mm: 195,
                reason: Outside::ShorterThanTable
            }
        ));
        assert_eq!(classify(Table::Women, 197.0, 183.0).label(), "19.5 A");
    }
}
