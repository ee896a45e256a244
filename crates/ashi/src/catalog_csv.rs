//! Shoe catalogs in CSV, one row per size:
//!
//! ```text
//! shoe_id,brand,model,category,gender,unit_system,size_mm,inner_length_mm,inner_ball_girth_mm,inner_width_mm,label_eu,label_uk,label_us
//! ```
//!
//! Rows of one shoe share its first six columns. `inner_width_mm` and the labels may be empty.
//! Lines starting with `#` are comments. Every error names its line, and a file with any error
//! imports nothing.

use crate::catalog::{Shoe, ShoeSize, names};
use crate::sizing::recommend::InnerSize;
use std::collections::BTreeMap;

/// The header every catalog file starts with.
pub const HEADER: [&str; 13] = [
    "shoe_id",
    "brand",
    "model",
    "category",
    "gender",
    "unit_system",
    "size_mm",
    "inner_length_mm",
    "inner_ball_girth_mm",
    "inner_width_mm",
    "label_eu",
    "label_uk",
    "label_us",
];

/// A problem on one line of a catalog file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct CsvError {
    /// 1-based line number in the file.
    pub line: u64,
    pub problem: String,
}

/// Parses a catalog file into shoes, in order of first appearance, each checked like an upsert.
pub fn parse(text: &str) -> Result<Vec<Shoe>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header_line = reader.position().line().max(1);
    let headers = reader.headers().map_err(|e| CsvError {
        line: e.position().map_or(header_line, |p| p.line()),
        problem: e.to_string(),
    })?;
    if headers.iter().collect::<Vec<_>>() != HEADER {
        return Err(CsvError {
            line: headers.position().map_or(1, |p| p.line()),
            problem: format!("the header must be {}", HEADER.join(",")),
        });
    }
    let mut order: Vec<String> = Vec::new();
    let mut shoes: BTreeMap<String, (u64, Shoe)> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| CsvError {
            line: e.position().map_or(0, |p| p.line()),
            problem: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let err = |problem: String| CsvError { line, problem };
        let col = |i: usize| record.get(i).unwrap_or("");
        let number = |i: usize| -> Result<f64, CsvError> {
            col(i)
                .parse::<f64>()
                .map_err(|_| err(format!("{}: {:?} is not a number", HEADER[i], col(i))))
        };
        let size_mm: u32 = col(6)
            .parse()
            .map_err(|_| err(format!("size_mm: {:?} is not a whole number of mm", col(6))))?;
        let inner_width_mm = if col(9).is_empty() {
            None
        } else {
            Some(number(9)?)
        };
        let size = ShoeSize {
            size_mm,
            inner: InnerSize {
                inner_length_mm: number(7)?,
                inner_ball_girth_mm: number(8)?,
                inner_width_mm,
            },
            label_eu: col(10).to_owned(),
            label_uk: col(11).to_owned(),
            label_us: col(12).to_owned(),
        };
        let shoe = Shoe {
            shoe_id: col(0).to_owned(),
            brand: col(1).to_owned(),
            model: col(2).to_owned(),
            category: names::parse_category(col(3)).ok_or_else(|| {
                err(format!(
                    "category: {:?} is not one of running, walking, casual, dress, boot",
                    col(3)
                ))
            })?,
            gender: names::parse_gender(col(4)).ok_or_else(|| {
                err(format!(
                    "gender: {:?} is not one of men, women, unisex",
                    col(4)
                ))
            })?,
            unit_system: names::parse_unit_system(col(5)).ok_or_else(|| {
                err(format!(
                    "unit_system: {:?} is not one of jis_mm, eu, uk, us",
                    col(5)
                ))
            })?,
            sizes: vec![],
        };
        // Check the row on its own so that its errors carry its line.
        let checked = Shoe {
            sizes: vec![size.clone()],
            ..shoe.clone()
        }
        .check("")
        .map_err(|e| err(e.to_string().replace("sizes[0].", "")))?;
        match shoes.get_mut(&shoe.shoe_id) {
            Some((_, existing)) => {
                if (
                    &existing.brand,
                    &existing.model,
                    existing.category,
                    existing.gender,
                ) != (&shoe.brand, &shoe.model, shoe.category, shoe.gender)
                    || existing.unit_system != shoe.unit_system
                {
                    return Err(err(format!(
                        "shoe {}: brand, model, category, gender and unit_system differ from \
                         its earlier rows",
                        shoe.shoe_id
                    )));
                }
                if existing.sizes.iter().any(|s| s.size_mm == size_mm) {
                    return Err(err(format!(
                        "shoe {}: size_mm {size_mm} appears twice",
                        shoe.shoe_id
                    )));
                }
                existing.sizes.push(size);
            }
            None => {
                order.push(shoe.shoe_id.clone());
                shoes.insert(shoe.shoe_id.clone(), (line, checked));
            }
        }
    }
    order
        .iter()
        .filter_map(|id| shoes.remove(id))
        .map(|(line, shoe)| {
            shoe.check("").map_err(|e| CsvError {
                line,
                problem: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# a comment\n\
        shoe_id,brand,model,category,gender,unit_system,size_mm,inner_length_mm,inner_ball_girth_mm,inner_width_mm,label_eu,label_uk,label_us\n\
        w1,Brand,Walker,walking,men,jis_mm,255,267.5,246,,41,7,8\n\
        w1,Brand,Walker,walking,men,jis_mm,250,262.5,243,99,40.5,6.5,7.5\n\
        r1,Brand,\"Runner, wide\",running,women,eu,235,250,237,,37,,\n";

    #[test]
    fn parses_shoes_and_sorts_sizes() {
        let shoes = parse(GOOD).unwrap();
        assert_eq!(shoes.len(), 2);
        assert_eq!(shoes[0].shoe_id, "w1");
        assert_eq!(
            shoes[0].sizes.iter().map(|s| s.size_mm).collect::<Vec<_>>(),
            vec![250, 255]
        );
        assert_eq!(shoes[0].sizes[0].inner.inner_width_mm, Some(99.0));
        assert_eq!(shoes[0].sizes[1].inner.inner_width_mm, None);
        assert_eq!(shoes[1].model, "Runner, wide");
        assert_eq!(shoes[1].sizes[0].label_eu, "37");
    }

    #[test]
    fn errors_name_the_line() {
        let bad = GOOD.replace("262.5", "abc");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.problem.contains("inner_length_mm"), "{err}");

        let bad = GOOD.replace("running", "skiing");
        assert_eq!(parse(&bad).unwrap_err().line, 5);

        let bad = GOOD.replace(
            "w1,Brand,Walker,walking,men,jis_mm,250",
            "w1,Brand,Walker,walking,men,jis_mm,255",
        );
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.problem.contains("appears twice"), "{err}");

        let bad = GOOD.replace("267.5,246", "267.5,999");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.problem.contains("inner_ball_girth_mm"), "{err}");

        let err = parse("a,b\n1,2\n").unwrap_err();
        assert!(err.problem.contains("header"), "{err}");
    }
}
