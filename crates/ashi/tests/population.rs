//! The sizing rules over real feet: 6,068 adults of the ANSUR II survey (foot length, breadth,
//! ball-of-foot circumference in mm). Every foot must land in the JIS table or be reported
//! outside it, and recommendations against a generated catalog must always leave the toe
//! allowance when the catalog has a size that does.

use ashi::foot::{Feet, Foot};
use ashi::sizing::jis::{self, JisSize, Outside, Table, WidthClass};
use ashi::sizing::recommend::{self, Category, Fit, InnerSize};
use std::collections::BTreeMap;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ansur2-feet.csv"
);

struct Subject {
    table: Table,
    foot: Foot,
}

fn subjects() -> Vec<Subject> {
    let text = std::fs::read_to_string(DATA).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (sex, length, breadth, girth, heel) = (
        col("sex"),
        col("footlength"),
        col("footbreadthhorizontal"),
        col("balloffootcircumference"),
        col("heelbreadth"),
    );
    lines
        .map(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let num = |i: usize| v[i].parse::<f64>().unwrap();
            Subject {
                table: if v[sex] == "M" {
                    Table::Men
                } else {
                    Table::Women
                },
                // The survey has no toe, instep or arch data; the rules under test use only
                // length, breadth and girth.
                foot: Foot {
                    length_mm: num(length),
                    width_mm: num(breadth),
                    ball_girth_mm: num(girth),
                    instep_height_mm: 65.0,
                    heel_width_mm: num(heel),
                    arch_height_mm: None,
                    ball_of_foot_length_mm: None,
                    toe_tip_offsets_mm: [0.0, 4.0, 9.0, 15.0, 24.0],
                    toe1_angle_deg: 10.0,
                    toe5_angle_deg: 10.0,
                },
            }
        })
        .collect()
}

#[test]
fn every_foot_classifies_inside_the_table_or_is_reported_outside() {
    let subjects = subjects();
    assert_eq!(subjects.len(), 6068);
    let mut classes: BTreeMap<(&str, WidthClass), usize> = BTreeMap::new();
    let mut outside: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in &subjects {
        let table_name = match s.table {
            Table::Men => "men",
            Table::Women => "women",
        };
        let (shortest, longest) = s.table.length_range_mm();
        match jis::classify(s.table, s.foot.length_mm, s.foot.ball_girth_mm) {
            JisSize::InTable {
                size_mm,
                class,
                class_girth_mm,
            } => {
                assert!((shortest..=longest).contains(&size_mm));
                assert!(class <= s.table.widest());
                // Nearest class centre: within half a class (3 mm) of the foot's girth.
                assert!((class_girth_mm - s.foot.ball_girth_mm).abs() <= 3.0 + 1e-9);
                *classes.entry((table_name, class)).or_default() += 1;
            }
            JisSize::Outside { size_mm, reason } => {
                let why = match reason {
                    Outside::ShorterThanTable => {
                        assert!(size_mm < shortest);
                        "shorter than the table"
                    }
                    Outside::LongerThanTable => {
                        assert!(size_mm > longest);
                        "longer than the table"
                    }
                    Outside::GirthBelowNarrowest => {
                        let a = s.table.class_girth_mm(f64::from(size_mm), WidthClass::A);
                        assert!(s.foot.ball_girth_mm < a - 3.0);
                        "girth below A"
                    }
                    Outside::GirthAboveWidest => {
                        let top = s.table.class_girth_mm(f64::from(size_mm), s.table.widest());
                        // Halves round up, so a girth exactly half a class above is outside.
                        assert!(s.foot.ball_girth_mm >= top + 3.0);
                        "girth above the widest class"
                    }
                };
                *outside.entry((table_name, why)).or_default() += 1;
            }
        }
    }
    println!("JIS S 5037 width classes of the ANSUR II feet:");
    for table in ["men", "women"] {
        let row: Vec<String> = WidthClass::ALL
            .iter()
            .filter_map(|c| classes.get(&(table, *c)).map(|n| format!("{c} {n}")))
            .collect();
        let out: Vec<String> = outside
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|((_, why), n)| format!("{why} {n}"))
            .collect();
        println!("  {table}: {}; outside: {}", row.join(", "), out.join(", "));
    }
    let inside: usize = classes.values().sum();
    let out: usize = outside.values().sum();
    println!("  inside {inside}, outside {out}, total {}", inside + out);
    assert_eq!(inside + out, subjects.len());
    // Most adults fit the table.
    assert!(inside > subjects.len() * 3 / 4, "only {inside} inside");
}

#[test]
fn recommendations_leave_the_toe_allowance_whenever_a_size_can() {
    // A walking shoe in every 5 mm size from 20.0 to 32.0, inner length = size + 12.5 mm and
    // inner girth = the men's E girth: a typical 5 mm-graded last.
    let sizes: Vec<InnerSize> = (200..=320)
        .step_by(5)
        .map(|size| InnerSize {
            inner_length_mm: f64::from(size) + 12.5,
            inner_ball_girth_mm: Table::Men.class_girth_mm(f64::from(size), WidthClass::E),
            inner_width_mm: None,
        })
        .collect();
    let window = Category::Walking.rules().length;
    let (mut good, mut impossible) = (0, 0);
    for s in subjects() {
        let feet = Feet {
            left: s.foot,
            right: s.foot,
        };
        let r = recommend::recommend(&feet, Category::Walking, &sizes).unwrap();
        let possible = sizes.iter().any(|z| {
            let m = z.inner_length_mm - s.foot.length_mm;
            m >= window.min_mm && m <= window.max_mm
        });
        if possible {
            assert_eq!(
                r.best.length.fit,
                Fit::Good,
                "foot {} mm got margin {}",
                s.foot.length_mm,
                r.best.length.margin_mm
            );
            assert!(r.best.length.margin_mm >= window.min_mm);
            assert!(r.best.length.margin_mm <= window.max_mm);
            good += 1;
        } else {
            assert_ne!(r.best.length.fit, Fit::Good);
            impossible += 1;
        }
    }
    println!("toe allowance left for {good} feet; {impossible} longer than the catalog allows");
    assert!(good > 6000);
}
