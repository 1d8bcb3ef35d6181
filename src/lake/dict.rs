//! A dictionary column builder for the lake's few low-cardinality strings, keyed by a small
//! slot number the caller already knows (an enum's index, a country's two letters) instead of
//! hashing every value as arrow's `StringDictionaryBuilder` does. It builds the same arrays:
//! values in order of first appearance, keys without nulls.

use std::sync::Arc;

use arrow::array::{ArrayBuilder, DictionaryArray, Int16Builder, StringBuilder};
use arrow::datatypes::Int16Type;

/// Dictionary builder over `N` slots.
pub(super) struct SlotDict<const N: usize> {
    keys: Int16Builder,
    values: StringBuilder,
    /// The key of each slot's value, -1 until it appears.
    slot_key: [i16; N],
}

impl<const N: usize> Default for SlotDict<N> {
    fn default() -> Self {
        SlotDict {
            keys: Int16Builder::new(),
            values: StringBuilder::new(),
            slot_key: [-1; N],
        }
    }
}

impl<const N: usize> SlotDict<N> {
    /// Room for `rows` keys.
    pub fn with_capacity(rows: usize) -> Self {
        SlotDict {
            keys: Int16Builder::with_capacity(rows),
            ..Self::default()
        }
    }

    /// Appends `value`, whose slot is `slot` (None: a value outside the slots, looked up by
    /// comparison; the decoders' validation makes that impossible, but the column stays right).
    #[inline]
    pub(super) fn append(&mut self, slot: Option<usize>, value: &str) {
        let key = match slot {
            Some(s) if self.slot_key[s] >= 0 => self.slot_key[s],
            Some(s) => {
                let k = self.intern(value);
                self.slot_key[s] = k;
                k
            }
            None => self.intern(value),
        };
        self.keys.append_value(key);
    }

    /// The key of `value`, added to the values if new (a linear search: done once per value
    /// and batch on the slot path).
    fn intern(&mut self, value: &str) -> i16 {
        let offsets = self.values.offsets_slice();
        let bytes = self.values.values_slice();
        let found = offsets
            .windows(2)
            .position(|w| &bytes[w[0] as usize..w[1] as usize] == value.as_bytes());
        let k = match found {
            Some(k) => k,
            None => {
                self.values.append_value(value);
                self.values.len() - 1
            }
        };
        // Same limit as arrow's builder, which panics on key overflow too.
        i16::try_from(k).expect("dictionary key overflow")
    }

    /// The column, resetting the builder.
    pub(super) fn finish(&mut self) -> DictionaryArray<Int16Type> {
        self.slot_key = [-1; N];
        DictionaryArray::try_new(self.keys.finish(), Arc::new(self.values.finish()))
            .expect("keys index the values")
    }
}

/// Slot of a two-letter uppercase country code.
#[inline]
pub(super) fn country_slot(code: &str) -> Option<usize> {
    match code.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => Some((a - b'A') as usize * 26 + (b - b'A') as usize),
        _ => None,
    }
}

/// Number of country slots.
pub(super) const COUNTRY_SLOTS: usize = 26 * 26;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, StringDictionaryBuilder};

    #[test]
    fn builds_what_arrows_dictionary_builder_builds() {
        let seq = ["DE", "US", "DE", "zz", "BR", "US", "zz", "AA", "DE"];
        let mut ours = SlotDict::<COUNTRY_SLOTS>::default();
        let mut theirs = StringDictionaryBuilder::<Int16Type>::new();
        for round in 0..2 {
            for (i, v) in seq.iter().enumerate() {
                // Every third value without its slot: both paths must agree.
                let slot = if i % 3 == round {
                    None
                } else {
                    country_slot(v)
                };
                ours.append(slot, v);
                theirs.append_value(v);
            }
            let (a, b) = (ours.finish(), theirs.finish());
            assert_eq!(a.keys(), b.keys());
            assert_eq!(a.values().to_data(), b.values().to_data());
            assert_eq!(a.data_type(), b.data_type());
            assert_eq!(a.keys().nulls(), None);
        }
    }
}
