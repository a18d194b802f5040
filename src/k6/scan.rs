//! Byte-level building blocks of the fast path: a cursor over one JSON line that reads strings
//! (escape-aware, without allocating), skips any JSON value structurally, and parses plain
//! decimal numbers; plus a hand-written RFC 3339 parser (any offset, 0–9 fraction digits) that
//! yields nanoseconds since the epoch, UTC. Every function answers `None` when it is not sure,
//! and the caller then hands the whole line to serde_json (see `line.rs`), so nothing here has
//! to be complete, only never wrong.

/// Bytes that end the quick scan of a JSON string: the closing quote, a backslash, and the
/// control characters a JSON string may not contain raw.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Powers of ten that are exact in an f64 (10^0 ..= 10^22).
static POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A word whose lowest set high bit marks the first byte of `word` (little endian) that is a
/// quote, a backslash or below 0x20. Bits above that byte may be spurious (borrows), never below.
#[inline]
fn stop_bytes(word: u64) -> u64 {
    let zero_in = |x: u64| x.wrapping_sub(LO) & !x & HI;
    zero_in(word ^ (LO * u64::from(b'"')))
        | zero_in(word ^ (LO * u64::from(b'\\')))
        | (word.wrapping_sub(LO * 0x20) & !word & HI)
}

/// The raw content of a JSON string (between the quotes) and whether it holds escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawStr<'a> {
    pub bytes: &'a [u8],
    pub escaped: bool,
}

/// A read position in one line.
pub(crate) struct Cursor<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

/// Nesting deeper than this is left to serde_json.
const MAX_DEPTH: u32 = 64;

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[inline]
    pub fn ws(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.pos == self.buf.len()
    }

    /// Reads a string starting at its opening quote.
    #[inline(always)]
    pub fn string(&mut self) -> Option<RawStr<'a>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_to_stop()?;
            match self.buf[self.pos] {
                b'"' => {
                    let bytes = &self.buf[start..self.pos];
                    self.pos += 1;
                    return Some(RawStr { bytes, escaped });
                }
                b'\\' => {
                    escaped = true;
                    let next = *self.buf.get(self.pos + 1)?;
                    match next {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            // Four hex digits, and not a surrogate: pairs (and lone halves,
                            // which serde_json rejects) are left to serde_json.
                            let hex = self.buf.get(self.pos + 2..self.pos + 6)?;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                                .and_then(|h| u16::from_str_radix(h, 16).ok())?;
                            if (0xD800..0xE000).contains(&code) {
                                return None;
                            }
                            self.pos += 6;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // raw control character
            }
        }
    }

    /// Moves to the next quote, backslash or control character: eight bytes at a time, byte by
    /// byte only in the last few bytes of the line. `None` when there is none.
    #[inline(always)]
    fn skip_to_stop(&mut self) -> Option<()> {
        while let Some(chunk) = self.buf.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let stops = stop_bytes(word);
            if stops != 0 {
                self.pos += (stops.trailing_zeros() / 8) as usize;
                return Some(());
            }
            self.pos += 8;
        }
        while !STRING_STOP[*self.buf.get(self.pos)? as usize] {
            self.pos += 1;
        }
        Some(())
    }

    /// Reads `"key"` then `:` (whitespace allowed around). Keys with escapes are not handled.
    #[inline]
    pub fn key(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let k = self.string()?;
        if k.escaped {
            return None;
        }
        self.ws();
        if !self.eat(b':') {
            return None;
        }
        self.ws();
        Some(k.bytes)
    }

    /// After a member: `,` → true (another member follows), `}` → false (object closed).
    #[inline]
    pub fn next_member(&mut self) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            b'}' => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Steps over one JSON value of any kind.
    pub fn skip_value(&mut self) -> Option<()> {
        self.skip_value_at(0)
    }

    fn skip_value_at(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                self.pos += 1;
                self.ws();
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    if !self.eat(b':') {
                        return None;
                    }
                    self.ws();
                    self.skip_value_at(depth + 1)?;
                    if !self.next_member()? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                self.ws();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_value_at(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Parses a JSON number. Plain decimals of up to 15 digits are computed exactly here
    /// (an exact integer divided by an exact power of ten rounds correctly); anything longer or
    /// with an exponent goes through the standard library parser.
    #[inline]
    pub fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        let neg = self.eat(b'-');
        let mut mantissa: u64 = 0;
        let mut digits = 0u32;
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            digits += 1;
            self.pos += 1;
        }
        if first == b'0' && digits > 1 {
            return None; // leading zero: not JSON
        }
        let mut frac = 0u32;
        if self.eat(b'.') {
            while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                digits += 1;
                frac += 1;
                self.pos += 1;
            }
            if frac == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let exp_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == exp_start {
                return None;
            }
            return slow_number(&self.buf[start..self.pos]);
        }
        if digits > 15 {
            return slow_number(&self.buf[start..self.pos]);
        }
        let v = mantissa as f64 / POW10[frac as usize];
        Some(if neg { -v } else { v })
    }
}

/// Long numbers and exponents: serde_json's own parser, so both paths round alike (serde_json
/// without `float_roundtrip` is not always exactly rounded) and both refuse what overflows.
fn slow_number(text: &[u8]) -> Option<f64> {
    serde_json::from_slice::<f64>(text).ok()
}

/// Parses a tag value made of ASCII digits (an HTTP status) into a u16.
pub(crate) fn parse_status(raw: &[u8]) -> Option<u16> {
    if raw.is_empty() || raw.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in raw {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
}

#[inline]
fn d2(b: &[u8], i: usize) -> Option<i64> {
    let (x, y) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    if x > 9 || y > 9 {
        return None;
    }
    Some(i64::from(x) * 10 + i64::from(y))
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{0,9}](Z|±HH:MM)` → nanoseconds since the epoch, UTC. More than nine
/// fraction digits are truncated. Leap seconds and other oddities answer `None`.
#[inline]
pub(crate) fn parse_rfc3339_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = d2(b, 0)? * 100 + d2(b, 2)?;
    let (month, day) = (d2(b, 5)?, d2(b, 8)?);
    let (hour, min, sec) = (d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match *b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (d2(b, i + 1)?, d2(b, i + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The fast parser, then chrono's for what it declines (e.g. leap seconds).
pub(crate) fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    parse_rfc3339_fast(b).or_else(|| {
        let s = std::str::from_utf8(b).ok()?;
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()?
            .timestamp_nanos_opt()
    })
}
