//! Delimited text read fast: lines and fields are split on one ASCII byte
//! (so every split point is a char boundary) with a vectorised byte search,
//! and UTF-8 is checked once per chunk rather than once per line.

use memchr::{memchr, memchr_iter, memrchr};

/// The `N` fields of `text` between `sep` bytes, or how many fields it has
/// when that is not `N`. `sep` must be ASCII. Fields are short, so the
/// separators are found eight bytes at a time in a plain word (no call
/// per field).
pub fn split_fields<const N: usize>(text: &str, sep: u8) -> Result<[&str; N], usize> {
    debug_assert!(sep.is_ascii());
    let mut out = [""; N];
    let mut n = 0;
    let mut start = 0;
    let mut field_ends_at = |end: usize| {
        if let Some(slot) = out.get_mut(n) {
            // ASCII separators: both ends are char boundaries.
            *slot = text.get(start..end).unwrap_or_default();
        }
        n += 1;
        start = end + 1;
    };
    let bytes = text.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let mut found = bytes_equal(u64::from_le_bytes(w), sep);
        while found != 0 {
            field_ends_at(base + (found.trailing_zeros() / 8) as usize);
            found &= found - 1;
        }
        base += 8;
    }
    for (i, b) in words.remainder().iter().enumerate() {
        if *b == sep {
            field_ends_at(base + i);
        }
    }
    field_ends_at(bytes.len());
    if n == N {
        Ok(out)
    } else {
        Err(n)
    }
}

/// The top bit of every byte of `word` that equals `b`, and no other bit
/// (exact: no carry crosses a byte).
fn bytes_equal(word: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(b));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// Why a line could not be handed out as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    NotUtf8,
    /// Longer than the splitter's bound (the rest of it is skipped).
    TooLong,
}

/// Chunks in, whole lines out (without `\n` or a trailing `\r`), holding at
/// most one partial line of at most `max` bytes between chunks.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    /// Inside a line already refused as too long: skip to its end.
    skipping: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            partial: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Hand every line `chunk` completes to `each`, in order.
    pub fn push(&mut self, chunk: &[u8], mut each: impl FnMut(Result<&str, LineError>)) {
        let mut rest = chunk;
        if !self.partial.is_empty() || self.skipping {
            let Some(pos) = memchr(b'\n', rest) else {
                self.hold(rest, &mut each);
                return;
            };
            let (head, tail) = rest.split_at(pos);
            rest = tail.get(1..).unwrap_or_default();
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(head);
                let text = std::mem::take(&mut self.partial);
                each(as_line(&text).and_then(|l| self.bounded(l)));
                self.partial = text;
                self.partial.clear();
            }
        }
        let whole = memrchr(b'\n', rest).map_or(0, |p| p + 1);
        let (lines, tail) = rest.split_at(whole);
        match std::str::from_utf8(lines) {
            // The common case: one check for the whole chunk, no copy.
            Ok(text) => {
                let mut start = 0;
                for end in memchr_iter(b'\n', lines) {
                    let line = text.get(start..end).unwrap_or_default();
                    each(self.bounded(line));
                    start = end + 1;
                }
            }
            Err(_) => {
                for line in lines.split(|b| *b == b'\n').take(lines_in(lines)) {
                    each(as_line(line).and_then(|l| self.bounded(l)));
                }
            }
        }
        self.hold(tail, &mut each);
    }

    /// Whether a partial last line (no `\n`) is left over at the end.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.skipping
    }

    fn bounded<'a>(&self, line: &'a str) -> Result<&'a str, LineError> {
        if line.len() > self.max {
            return Err(LineError::TooLong);
        }
        Ok(line.strip_suffix('\r').unwrap_or(line))
    }

    fn hold(&mut self, bytes: &[u8], each: &mut impl FnMut(Result<&str, LineError>)) {
        if self.skipping {
            return;
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > self.max {
            self.partial.clear();
            self.skipping = true;
            each(Err(LineError::TooLong));
        }
    }
}

fn lines_in(terminated: &[u8]) -> usize {
    memchr_iter(b'\n', terminated).count()
}

fn as_line(raw: &[u8]) -> Result<&str, LineError> {
    std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_the_separator_and_count_when_wrong() {
        assert_eq!(split_fields::<3>("a,,ç", b','), Ok(["a", "", "ç"]));
        assert_eq!(split_fields::<3>("a,b", b','), Err(2));
        assert_eq!(split_fields::<2>("a,b,c,d", b','), Err(4));
        assert_eq!(split_fields::<1>("", b','), Ok([""]));
        // Separators in every position of the eight-byte words.
        let line = "a,bb,,ccc,dddddddd,e,ff,ggggggggggggggggg,,h";
        let want: Vec<&str> = line.split(',').collect();
        assert_eq!(split_fields::<10>(line, b',').unwrap().to_vec(), want);
        for cut in 0..line.len() {
            let part = &line[cut..];
            let want = part.split(',').count();
            assert_eq!(split_fields::<0>(part, b','), Err(want));
        }
        // Bytes with the top bit set are never taken for a separator.
        assert_eq!(
            split_fields::<2>("\u{ac}\u{2c00},x", b','),
            Ok(["\u{ac}\u{2c00}", "x"])
        );
    }

    fn collect(chunks: &[&[u8]], max: usize) -> (Vec<Result<String, LineError>>, bool) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.map(str::to_owned)));
        }
        (out, s.has_partial())
    }

    #[test]
    fn lines_come_out_whole_whatever_the_chunking() {
        let text = b"one\r\ntw\xc3\xa9\n\nthree\nfour";
        let want: Vec<Result<String, LineError>> = ["one", "twé", "", "three"]
            .iter()
            .map(|s| Ok((*s).to_owned()))
            .collect();
        for split in 0..text.len() {
            for second in split..text.len() {
                let (a, rest) = text.split_at(split);
                let (b, c) = rest.split_at(second - split);
                let (got, partial) = collect(&[a, b, c], 64);
                assert_eq!(got, want, "split at {split}/{second}");
                assert!(partial, "`four` has no end of line");
            }
        }
    }

    #[test]
    fn a_bad_line_is_refused_alone_and_a_long_one_is_skipped_whole() {
        let (got, _) = collect(&[b"ok\n\xff\xfe\nfine\n"], 64);
        assert_eq!(
            got,
            vec![
                Ok("ok".to_owned()),
                Err(LineError::NotUtf8),
                Ok("fine".to_owned())
            ]
        );
        let (got, partial) = collect(&[b"a\n0123456", b"789abc", b"def\nb\n"], 8);
        assert_eq!(
            got,
            vec![
                Ok("a".to_owned()),
                Err(LineError::TooLong),
                Ok("b".to_owned())
            ]
        );
        assert!(!partial);
        let (got, _) = collect(&[b"0123456789\nb\n"], 8);
        assert_eq!(got, vec![Err(LineError::TooLong), Ok("b".to_owned())]);
    }
}
