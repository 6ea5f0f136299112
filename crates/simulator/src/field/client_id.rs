//! Client-id rules of the EcoFlow broker (protocol §9): the app route's accepted form
//! `ANDROID_<UUID v4, upper case>_<userId>`, and the open route's limit of distinct client
//! ids per account per UTC day.

use std::collections::BTreeSet;

/// True for `ANDROID_<UUID v4 in upper case>_<user_id>` (8-4-4-4-12 upper-case hex digits,
/// version nibble 4, variant 8/9/A/B).
pub fn app_form_ok(client_id: &str, user_id: &str) -> bool {
    let Some(rest) = client_id.strip_prefix("ANDROID_") else {
        return false;
    };
    let Some((uuid, user)) = rest.split_once('_') else {
        return false;
    };
    user == user_id && is_upper_uuid_v4(uuid)
}

fn is_upper_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    let hex_ok = b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_digit() || (b'A'..=b'F').contains(c),
    });
    hex_ok && b[14] == b'4' && matches!(b[19], b'8' | b'9' | b'A' | b'B')
}

/// Distinct client ids one account used on one UTC day.
#[derive(Debug, Default, Clone)]
pub struct DailyIds {
    day: u64,
    ids: BTreeSet<String>,
}

impl DailyIds {
    /// Admits `client_id` on `day` (days since the epoch, UTC) unless it would be the
    /// `limit + 1`-th distinct id of that day (`limit` 0 = no limit). An id already seen
    /// today is always admitted.
    pub fn admit(&mut self, day: u64, client_id: &str, limit: u32) -> bool {
        if day != self.day {
            self.day = day;
            self.ids.clear();
        }
        if self.ids.contains(client_id) {
            return true;
        }
        if limit > 0 && self.ids.len() >= limit as usize {
            return false;
        }
        self.ids.insert(client_id.to_string());
        true
    }

    /// How many distinct ids were admitted on `day`.
    pub fn count(&self, day: u64) -> usize {
        if day == self.day { self.ids.len() } else { 0 }
    }

    /// The ids admitted on `day`, sorted.
    pub fn ids(&self, day: u64) -> Vec<String> {
        if day == self.day {
            self.ids.iter().cloned().collect()
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "1700000000000000001";

    #[test]
    fn app_form_is_android_upper_uuid_v4_and_the_user_id() {
        let good = format!("ANDROID_3F2504E0-4F89-41D3-9A0C-0305E82C3301_{UID}");
        assert!(app_form_ok(&good, UID));
        for bad in [
            format!("ANDROID_3f2504e0-4f89-41d3-9a0c-0305e82c3301_{UID}"), // lower case
            format!("ANDROID_3F2504E0-4F89-31D3-9A0C-0305E82C3301_{UID}"), // version 3
            format!("ANDROID_3F2504E0-4F89-41D3-7A0C-0305E82C3301_{UID}"), // variant
            format!("ANDROID_3F2504E04F8941D39A0C0305E82C3301_{UID}"),     // no dashes
            "ANDROID_3F2504E0-4F89-41D3-9A0C-0305E82C3301_42".to_string(), // other user
            format!("IOS_3F2504E0-4F89-41D3-9A0C-0305E82C3301_{UID}"),
            format!("ANDROID_3F2504E0-4F89-41D3-9A0C-0305E82C3301{UID}"),
            String::new(),
        ] {
            assert!(!app_form_ok(&bad, UID), "{bad}");
        }
    }

    #[test]
    fn daily_limit_refuses_the_next_distinct_id_and_resets_each_day() {
        let mut d = DailyIds::default();
        for i in 0..10 {
            assert!(d.admit(5, &format!("id{i}"), 10));
        }
        assert!(!d.admit(5, "id10", 10));
        assert!(d.admit(5, "id3", 10), "a known id is fine");
        assert_eq!(d.count(5), 10);
        assert!(d.admit(6, "id10", 10), "a new day");
        assert_eq!((d.count(6), d.count(5)), (1, 0));
        assert!((0..50).all(|i| d.admit(6, &format!("x{i}"), 0)));
    }
}
