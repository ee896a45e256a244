//! JSON bodies: every scalar becomes an argument named by its path, as ModSecurity
//! names them (`json.user.name`, array items `json.list.array_0`).

use serde_json::Value;

use super::Pair;

/// Parses `data`; the error message is what REQBODY_ERROR_MSG shows.
pub(crate) fn parse(data: &[u8], out: &mut Vec<Pair>) -> Result<(), String> {
    let value: Value =
        serde_json::from_slice(data).map_err(|e| format!("JSON parsing error: {e}"))?;
    walk(&value, &mut String::from("json"), out);
    Ok(())
}

fn walk(value: &Value, path: &mut String, out: &mut Vec<Pair>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                walk(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!(".array_{i}"));
                walk(v, path, out);
                path.truncate(len);
            }
        }
        Value::String(s) => out.push((path.clone(), s.as_bytes().to_vec())),
        Value::Number(n) => out.push((path.clone(), n.to_string().into_bytes())),
        Value::Bool(b) => out.push((path.clone(), b.to_string().into_bytes())),
        Value::Null => out.push((path.clone(), Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_nested_values_by_path() {
        let mut out = Vec::new();
        parse(br#"{"a":{"b":"x"},"l":[1,true,null]}"#, &mut out).unwrap();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "json.a.b",
                "json.l.array_0",
                "json.l.array_1",
                "json.l.array_2"
            ]
        );
        assert_eq!(out[0].1, b"x");
        assert!(parse(b"{bad", &mut out).is_err());
    }
}
