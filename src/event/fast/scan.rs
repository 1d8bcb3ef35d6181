//! The byte-level pieces of the fast decoder. Each accepts only the plain form of its token
//! (no escapes, no leading zeros, no fractions, canonical UUIDs and addresses) and answers
//! `None` for anything else: the caller then hands the record to serde, which decides. So
//! nothing here has to reproduce serde_json's rules for the unusual cases, only never accept
//! what it would refuse or read differently.

/// A position in one record. Only ASCII is accepted (a string with any other byte answers
/// `None`: serde decides, and refuses what is not UTF-8), so a record read to its end is ASCII,
/// valid UTF-8, without a separate pass over it.
pub(super) struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in the bytes of `x` that end a plain string's scan (`"`, `\`, < 0x20, and
/// non-ASCII). Bits above the lowest may be spurious (borrows), the lowest is exact: all a scan
/// needs.
#[inline]
fn specials(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero(x ^ (ONES * u64::from(b'"')))
        | zero(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
        | (x & HIGHS)
}

/// Whether the eight bytes of `x` are all lowercase hex digits (an uppercase UUID goes the
/// slow way: the lake stores the lowercase form, which serde's path re-encodes).
#[inline]
fn all_hex(x: u64) -> bool {
    // High bit of each byte whose value is strictly between m and n (exact per byte for bytes
    // below 0x80; the `!x` term excludes the others).
    let low = x & (ONES * 0x7f);
    let between = |m: u64, n: u64| {
        (ONES * (127 + n)).wrapping_sub(low) & !x & low.wrapping_add(ONES * (127 - m)) & HIGHS
    };
    between(b'0' as u64 - 1, b'9' as u64 + 1) | between(b'a' as u64 - 1, b'f' as u64 + 1) == HIGHS
}

/// A key as the encoder writes it (`"name":`), its first 16 bytes also as a masked word, so
/// that checking for it costs a load and a compare rather than a `memcmp` call.
pub(super) struct Key {
    pub(super) text: &'static [u8],
    head: u128,
    mask: u128,
}

impl Key {
    pub(super) const fn new(text: &'static [u8]) -> Key {
        let (mut head, mut mask, mut i) = (0u128, 0u128, 0);
        while i < text.len() && i < 16 {
            head |= (text[i] as u128) << (8 * i);
            mask |= 0xff << (8 * i);
            i += 1;
        }
        Key { text, head, mask }
    }

    /// Whether `rest` starts with the key; `word`: its first 16 bytes, if it has as many.
    #[inline]
    fn is_at(&self, rest: &[u8], word: Option<u128>) -> bool {
        match word {
            Some(w) => {
                w & self.mask == self.head
                    && (self.text.len() <= 16
                        || rest.get(16..self.text.len()) == self.text.get(16..))
            }
            None => rest.starts_with(self.text),
        }
    }

    /// The key's name (without quotes and colon).
    pub(super) fn name(&self) -> &'static [u8] {
        &self.text[1..self.text.len() - 2]
    }
}

/// Length of a hyphenated UUID.
pub(super) const UUID_LEN: usize = 36;

impl<'a> Cursor<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Cursor { b, i: 0 }
    }

    /// Skips JSON whitespace (exactly serde_json's four bytes).
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Whitespace, then the byte `c`.
    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        self.eat_now(c)
    }

    /// The byte `c` right here.
    #[inline]
    fn eat_now(&mut self, c: u8) -> Option<()> {
        (*self.b.get(self.i)? == c).then(|| self.i += 1)
    }

    /// The number of the key here if it is one of `keys[from..]`'s next few, written as the
    /// encoder does (`"name":`): most records need no other key lookup.
    #[inline]
    pub(super) fn expect_key(&mut self, keys: &[Key], from: usize) -> Option<usize> {
        self.ws();
        let rest = &self.b[self.i..];
        let word = rest
            .get(..16)
            .map(|w| u128::from_le_bytes(w.try_into().expect("16 bytes")));
        // Up to three optional keys may be absent before the next one.
        let k = (from..keys.len().min(from + 4)).find(|&k| keys[k].is_at(rest, word))?;
        self.i += keys[k].text.len();
        Some(k)
    }

    /// A key and its colon, the long way.
    #[inline]
    pub(super) fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.string()?;
        self.eat(b':')?;
        Some(key)
    }

    /// Whitespace, then `,` (→ true) or `}` (→ false).
    #[inline]
    pub(super) fn comma_or_end(&mut self) -> Option<bool> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        match c {
            b',' => Some(true),
            b'}' => Some(false),
            _ => None,
        }
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// A string's raw text (after whitespace). `None` on an escape, a control character or a
    /// byte beyond ASCII: the first needs unescaping, the second is an error to serde_json, the
    /// third is left to serde (it may not be UTF-8).
    #[inline]
    pub(super) fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        // Eight bytes at a time to the first special byte, then that byte decides.
        let mut j = start;
        while let Some(word) = self.b.get(j..j + 8) {
            let m = specials(u64::from_le_bytes(word.try_into().ok()?));
            if m != 0 {
                j += m.trailing_zeros() as usize / 8;
                break;
            }
            j += 8;
        }
        loop {
            match *self.b.get(j)? {
                b'"' => break,
                b'\\' | 0..0x20 | 0x80.. => return None,
                _ => j += 1,
            }
        }
        self.i = j + 1;
        ascii(&self.b[start..j])
    }

    /// [`Cursor::str`] as bytes, for comparisons.
    #[inline]
    pub(super) fn string(&mut self) -> Option<&'a [u8]> {
        self.str().map(str::as_bytes)
    }

    /// A lowercase hyphenated UUID string, returned as its text (which is what the lake
    /// stores: `Uuid::hyphenated().encode_lower` of the parsed value gives the same bytes).
    #[inline]
    pub(super) fn uuid(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let s = self.b.get(start..start + UUID_LEN + 1)?;
        let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        let halves = |a: usize, b: usize| {
            let half = |at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
            u64::from(half(a)) | u64::from(half(b)) << 32
        };
        let ok = [8, 13, 18, 23].iter().all(|&i| s[i] == b'-')
            && s[UUID_LEN] == b'"'
            && all_hex(word(0))
            && all_hex(halves(9, 14))
            && all_hex(halves(19, 24))
            && all_hex(word(28));
        if !ok {
            return None;
        }
        self.i = start + UUID_LEN + 1;
        ascii(&s[..UUID_LEN])
    }

    /// A dotted-quad IPv4 address in its canonical form (what `Ipv4Addr`'s Display writes,
    /// and so what the lake stores), with its octets.
    #[inline]
    pub(super) fn ipv4(&mut self) -> Option<(&'a str, [u8; 4])> {
        let s = self.str()?;
        let mut octets = [0u8; 4];
        let mut rest = s.as_bytes();
        for (n, o) in octets.iter_mut().enumerate() {
            let len = rest
                .iter()
                .take(4)
                .position(|&c| c == b'.')
                .unwrap_or(rest.len());
            *o = octet(&rest[..len])?;
            rest = &rest[len..];
            if n < 3 {
                rest = rest.strip_prefix(b".")?;
            }
        }
        rest.is_empty().then_some((s, octets))
    }

    /// A plain JSON integer that fits an i64: `-?(0|[1-9][0-9]*)`, not `-0`, followed by no
    /// fraction or exponent (serde_json reads those, and `-0`, as floats: a type error).
    #[inline]
    pub(super) fn int(&mut self) -> Option<i64> {
        self.ws();
        let neg = self.eat_now(b'-').is_some();
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        if neg {
            // 1 ..= 2^63; -0 is a float to serde_json.
            (v != 0 && v <= 1 << 63).then(|| (v as i64).wrapping_neg())
        } else {
            i64::try_from(v).ok()
        }
    }

    /// `null` (→ None) or an integer.
    #[inline]
    pub(super) fn opt_int(&mut self) -> Option<Option<i64>> {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            return Some(None);
        }
        self.int().map(Some)
    }

    /// `true` or `false`.
    #[inline]
    pub(super) fn bool(&mut self) -> Option<bool> {
        self.ws();
        let rest = &self.b[self.i..];
        let (v, n) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += n;
        Some(v)
    }
}

/// Bytes already checked to be ASCII, as text. Validating them again cost a tenth of the
/// sink's decoding thread.
#[inline]
fn ascii(b: &[u8]) -> Option<&str> {
    debug_assert!(b.is_ascii());
    // SAFETY: both callers pass only bytes below 0x80 (`str` stops at any other byte and
    // answers None; `uuid` accepts only hex digits and hyphens), and ASCII is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(b) })
}

/// One decimal octet without a leading zero (as `Ipv4Addr::from_str` requires).
#[inline]
fn octet(d: &[u8]) -> Option<u8> {
    if d.is_empty() || d.len() > 3 || (d.len() > 1 && d[0] == b'0') {
        return None;
    }
    let mut v: u16 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u16::from(c - b'0');
    }
    u8::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_hex_is_exact_for_every_byte_at_every_position() {
        let base = *b"0123abcd";
        assert!(all_hex(u64::from_le_bytes(base)));
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut w = base;
                w[at] = b;
                let want = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                assert_eq!(all_hex(u64::from_le_bytes(w)), want, "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn specials_finds_the_first_special_byte() {
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut w = *b"abcdefgh";
                w[at] = b;
                let m = specials(u64::from_le_bytes(w));
                let special = b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b);
                assert_eq!(m != 0, special, "{b:#x} at {at}");
                if special {
                    assert_eq!(m.trailing_zeros() as usize / 8, at);
                }
            }
        }
    }
}
