//! JSON flattening of the open API (protocol §1b): nested objects become dotted keys
//! (`a.b`), arrays become indexed keys (`a[0]`). One function for both users: request
//! signing (every array indexed, leaves as text) and quota mapping (arrays of objects are
//! battery packs and get indexed; arrays of numbers are one state's value).

use serde_json::Value as Json;

/// Which arrays [`flatten`] opens up into `[i]` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrays {
    /// Every array (the signing form: `a[0]=1&a[1]=x`).
    Indexed,
    /// Only arrays that hold an object (`bpInfo[1].bpSoc`); other arrays are leaves
    /// (`bpTemp = [20.5, 21]`, one state).
    ObjectsIndexed,
}

/// The leaves of `value` with their flattened keys, in document order. A scalar without
/// a key (the whole value is a scalar) has nothing to be called and is left out.
pub fn flatten(value: &Json, arrays: Arrays) -> Vec<(String, &Json)> {
    let mut out = Vec::new();
    flatten_into(None, value, arrays, &mut out);
    out
}

/// The signing form: every array indexed, strings as they are, other scalars as JSON
/// text (`true`, `false`, `null`, `1.5`) — protocol §9: a boolean or null signed any other
/// way draws 8521.
pub fn flatten_text(value: &Json) -> Vec<(String, String)> {
    flatten(value, Arrays::Indexed)
        .into_iter()
        .map(|(key, leaf)| match leaf {
            Json::String(s) => (key, s.clone()),
            other => (key, other.to_string()),
        })
        .collect()
}

fn flatten_into<'a>(
    prefix: Option<&str>,
    value: &'a Json,
    arrays: Arrays,
    out: &mut Vec<(String, &'a Json)>,
) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                let key = prefix.map_or_else(|| k.clone(), |p| format!("{p}.{k}"));
                flatten_into(Some(&key), v, arrays, out);
            }
        }
        Json::Array(items) if arrays == Arrays::Indexed || items.iter().any(Json::is_object) => {
            let p = prefix.unwrap_or_default();
            for (i, v) in items.iter().enumerate() {
                flatten_into(Some(&format!("{p}[{i}]")), v, arrays, out);
            }
        }
        _ => {
            if let Some(p) = prefix {
                out.push((p.to_string(), value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(flat: &[(String, &Json)]) -> Vec<String> {
        flat.iter().map(|(k, _)| k.clone()).collect()
    }

    #[test]
    fn signing_form_indexes_every_array_and_spells_null() {
        let body = json!({"sn": "X", "params": {"a": 1, "list": [true, "b"]}, "n": null});
        let mut flat = flatten_text(&body);
        flat.sort();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            flat,
            vec![
                pair("n", "null"),
                pair("params.a", "1"),
                pair("params.list[0]", "true"),
                pair("params.list[1]", "b"),
                pair("sn", "X"),
            ]
        );
        assert!(flatten_text(&json!({})).is_empty());
        assert!(
            flatten_text(&json!(5)).is_empty(),
            "a bare scalar has no key"
        );
    }

    #[test]
    fn quota_form_indexes_only_arrays_of_objects() {
        let v = json!({"96_108": {"bpInfo": [{"bpSoc": 10}, {"bpSoc": 20}]},
                       "96_111.bpTemp": [20.5, 21], "96_1.x": null});
        let mut flat = flatten(&v, Arrays::ObjectsIndexed);
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            keys(&flat),
            [
                "96_1.x",
                "96_108.bpInfo[0].bpSoc",
                "96_108.bpInfo[1].bpSoc",
                "96_111.bpTemp"
            ]
        );
        assert_eq!(flat[0].1, &Json::Null, "nulls stay: the mapper counts them");
        assert_eq!(flat[3].1, &json!([20.5, 21]));
    }
}
