//! The routing table: BIN prefixes (the first 6–8 digits of a card number,
//! ISO/IEC 7812-1 §4.2) to the issuer that owns them. Pure: no I/O.
//!
//! Prefixes may not overlap: a prefix that is another's prefix (or the
//! same) is refused when the table is built, so every card number has at
//! most one owner and the order of the settings never matters.

use std::collections::HashMap;

/// Shortest BIN prefix accepted.
pub const MIN_PREFIX_DIGITS: usize = 6;
/// Longest BIN prefix accepted.
pub const MAX_PREFIX_DIGITS: usize = 8;

/// Why a routing table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A prefix that is not 6–8 ASCII digits.
    #[error("a BIN prefix must be 6 to 8 digits")]
    BadPrefix,
    /// Two prefixes overlap (one is a prefix of the other, or they are
    /// equal); `first` is the index of the one met earlier.
    #[error("overlaps BIN prefix {other} (of issuer {owner})")]
    Overlap {
        /// The prefix already in the table (BINs are public, so naming it
        /// leaks nothing).
        other: String,
        /// The issuer that owns it.
        owner: String,
    },
}

/// BIN prefixes to issuer indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    by_prefix: HashMap<String, usize>,
}

/// Is `p` a valid BIN prefix?
pub fn valid_prefix(p: &str) -> bool {
    (MIN_PREFIX_DIGITS..=MAX_PREFIX_DIGITS).contains(&p.len())
        && p.bytes().all(|b| b.is_ascii_digit())
}

impl Routes {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `prefix` for issuer `index` (`names[index]` names it in
    /// errors).
    ///
    /// # Errors
    /// [`RouteError::BadPrefix`], or [`RouteError::Overlap`] when it
    /// overlaps a prefix already added.
    pub fn add(&mut self, prefix: &str, index: usize, names: &[String]) -> Result<(), RouteError> {
        if !valid_prefix(prefix) {
            return Err(RouteError::BadPrefix);
        }
        let owner = |i: usize| names.get(i).cloned().unwrap_or_default();
        // A shorter prefix of this one already in the table.
        for len in MIN_PREFIX_DIGITS..=prefix.len() {
            if let Some(&i) = self.by_prefix.get(&prefix[..len]) {
                return Err(RouteError::Overlap {
                    other: prefix[..len].to_owned(),
                    owner: owner(i),
                });
            }
        }
        // A longer prefix that starts with this one.
        if let Some((other, &i)) = self.by_prefix.iter().find(|(p, _)| p.starts_with(prefix)) {
            return Err(RouteError::Overlap {
                other: other.clone(),
                owner: owner(i),
            });
        }
        self.by_prefix.insert(prefix.to_owned(), index);
        Ok(())
    }

    /// The issuer of a card number (ASCII digits, at least 8): the one
    /// whose prefix it starts with, if any.
    pub fn route(&self, pan: &str) -> Option<usize> {
        (MIN_PREFIX_DIGITS..=MAX_PREFIX_DIGITS)
            .filter_map(|len| pan.get(..len))
            .find_map(|p| self.by_prefix.get(p).copied())
    }

    /// How many prefixes the table holds.
    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    /// Is the table empty?
    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn names() -> Vec<String> {
        vec!["mellat".into(), "saderat".into(), "sepah".into()]
    }

    #[test]
    fn routes_by_prefix() {
        let mut r = Routes::new();
        r.add("610433", 0, &names()).unwrap();
        r.add("603799", 1, &names()).unwrap();
        r.add("5892101", 2, &names()).unwrap();
        for (pan, want) in [
            ("6104337700000001", Some(0)),
            ("6037990000000006", Some(1)),
            ("5892101000000000", Some(2)),
            ("5892100000000000", None),
            ("6104320000000000", None),
            ("", None),
            ("61043", None),
        ] {
            assert_eq!(r.route(pan), want, "{pan}");
        }
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn overlaps_and_bad_prefixes_are_refused() {
        let mut r = Routes::new();
        r.add("610433", 0, &names()).unwrap();
        for (p, want) in [
            (
                "610433",
                RouteError::Overlap {
                    other: "610433".into(),
                    owner: "mellat".into(),
                },
            ),
            (
                "6104331",
                RouteError::Overlap {
                    other: "610433".into(),
                    owner: "mellat".into(),
                },
            ),
            (
                "61043312",
                RouteError::Overlap {
                    other: "610433".into(),
                    owner: "mellat".into(),
                },
            ),
            ("61043", RouteError::BadPrefix),
            ("610433123", RouteError::BadPrefix),
            ("61o433", RouteError::BadPrefix),
            ("۶۱۰۴۳۳", RouteError::BadPrefix),
        ] {
            assert_eq!(r.add(p, 1, &names()), Err(want), "{p}");
        }
        let mut r = Routes::new();
        r.add("60379912", 1, &names()).unwrap();
        assert_eq!(
            r.add("603799", 0, &names()),
            Err(RouteError::Overlap {
                other: "60379912".into(),
                owner: "saderat".into()
            })
        );
    }

    proptest! {
        /// Whatever prefixes are accepted, every card number has at most
        /// one owner, and it is the one whose prefix it starts with.
        #[test]
        fn every_card_has_at_most_the_owner_of_its_prefix(
            prefixes in proptest::collection::vec("[0-9]{6,8}", 1..12),
            pan in "[0-9]{16}",
        ) {
            let names: Vec<String> = (0..prefixes.len()).map(|i| format!("i{i}")).collect();
            let mut r = Routes::new();
            let mut kept = Vec::new();
            for (i, p) in prefixes.iter().enumerate() {
                if r.add(p, i, &names).is_ok() {
                    kept.push((p.clone(), i));
                }
            }
            let owners: Vec<usize> = kept.iter().filter(|(p, _)| pan.starts_with(p.as_str())).map(|(_, i)| *i).collect();
            prop_assert!(owners.len() <= 1);
            prop_assert_eq!(r.route(&pan), owners.first().copied());
            // A card that starts with a kept prefix routes to it.
            for (p, i) in &kept {
                let card = format!("{p}{}", &pan[p.len()..]);
                prop_assert_eq!(r.route(&card), Some(*i));
            }
        }
    }
}
