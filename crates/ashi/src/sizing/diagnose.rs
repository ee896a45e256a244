//! Everything said about a pair of feet at once: size, shape, arch, big-toe screening, and how
//! the two feet differ.

use super::arch::{self, ArchIndex, ArchType};
use super::hallux::{self, HalluxBand};
use super::jis::{self, JisSize, Table};
use super::to_tenth;
use super::toe::{self, ToeShape};
use crate::foot::{Feet, Foot};

/// Feet that differ in length by this much or more get a note: half a JIS size step.
pub const NOTABLE_LENGTH_DIFFERENCE_MM: f64 = 5.0;

/// The diagnosis of one foot.
#[derive(Debug, Clone, PartialEq)]
pub struct FootDiagnosis {
    pub jis: JisSize,
    pub toe_shape: ToeShape,
    /// `None` when no arch height was measured.
    pub arch: Option<(ArchIndex, ArchType)>,
    pub hallux: HalluxBand,
}

/// The diagnosis of both feet.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub left: FootDiagnosis,
    pub right: FootDiagnosis,
    /// Left minus right, mm (to 0.1 mm, as all three differences).
    pub length_difference_mm: f64,
    pub width_difference_mm: f64,
    pub ball_girth_difference_mm: f64,
    pub notes: Vec<String>,
}

/// Diagnoses one foot.
pub fn foot(table: Table, toe_tolerance_mm: f64, foot: &Foot) -> FootDiagnosis {
    FootDiagnosis {
        jis: jis::classify(table, foot.length_mm, foot.ball_girth_mm),
        toe_shape: toe::classify(&foot.toe_tip_offsets_mm, toe_tolerance_mm),
        arch: foot.arch_height_mm.map(|height| {
            let index = arch::index(height, foot.length_mm, foot.ball_of_foot_length_mm);
            (index, arch::classify(index.value))
        }),
        hallux: hallux::band(foot.toe1_angle_deg),
    }
}

/// Diagnoses both feet and compares them.
pub fn feet(table: Table, toe_tolerance_mm: f64, feet: &Feet) -> Diagnosis {
    let left = foot(table, toe_tolerance_mm, &feet.left);
    let right = foot(table, toe_tolerance_mm, &feet.right);
    let length_difference_mm = to_tenth(feet.left.length_mm - feet.right.length_mm);
    let mut notes = Vec::new();
    if length_difference_mm.abs() >= NOTABLE_LENGTH_DIFFERENCE_MM {
        let (longer, _) = feet.larger();
        notes.push(format!(
            "The feet differ in length by {:.1} mm (half a size or more); sizes are chosen for \
             the {} foot.",
            length_difference_mm.abs(),
            longer.name()
        ));
    }
    if left.jis.label() != right.jis.label() {
        notes.push(format!(
            "Left is {}, right is {}.",
            left.jis.label(),
            right.jis.label()
        ));
    }
    Diagnosis {
        left,
        right,
        length_difference_mm,
        width_difference_mm: to_tenth(feet.left.width_mm - feet.right.width_mm),
        ball_girth_difference_mm: to_tenth(feet.left.ball_girth_mm - feet.right.ball_girth_mm),
        notes,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-measured men's foot: 25.0 E, Egyptian toes, no arch height.
    pub(crate) fn sample_foot() -> Foot {
        Foot {
            length_mm: 250.0,
            width_mm: 100.0,
            ball_girth_mm: 243.0,
            instep_height_mm: 65.0,
            heel_width_mm: 65.0,
            arch_height_mm: None,
            ball_of_foot_length_mm: None,
            toe_tip_offsets_mm: [0.0, 4.0, 9.0, 15.0, 24.0],
            toe1_angle_deg: 12.0,
            toe5_angle_deg: 8.0,
        }
    }

    #[test]
    fn both_feet_with_differences() {
        let left = sample_foot();
        let right = Foot {
            length_mm: 256.0,
            ball_girth_mm: 250.0,
            arch_height_mm: Some(70.0),
            ball_of_foot_length_mm: Some(190.0),
            toe1_angle_deg: 24.0,
            ..sample_foot()
        };
        let d = feet(Table::Men, toe::DEFAULT_TOLERANCE_MM, &Feet { left, right });
        assert_eq!(d.left.jis.label(), "25.0 E");
        // 256 rounds to 25.5; 25.5 A = 222, E = 246, EE = 252: 250 is nearer EE.
        assert_eq!(d.right.jis.label(), "25.5 EE");
        assert_eq!(d.left.toe_shape, ToeShape::Egyptian);
        assert_eq!(d.left.arch, None);
        let (index, kind) = d.right.arch.unwrap();
        assert!(!index.estimated);
        assert_eq!(kind, ArchType::High); // 70 / 190 = 0.368
        assert_eq!(d.left.hallux, HalluxBand::Normal);
        assert_eq!(d.right.hallux, HalluxBand::Mild);
        assert_eq!(d.length_difference_mm, -6.0);
        assert_eq!(d.ball_girth_difference_mm, -7.0);
        assert_eq!(d.notes.len(), 2);
        assert!(d.notes[0].contains("right foot"), "{}", d.notes[0]);
    }

    #[test]
    fn matching_feet_have_no_notes() {
        let d = feet(
            Table::Men,
            2.0,
            &Feet {
                left: sample_foot(),
                right: sample_foot(),
            },
        );
        assert!(d.notes.is_empty());
        assert_eq!(d.length_difference_mm, 0.0);
    }
}
