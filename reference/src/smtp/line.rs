//! Incremental line framing for SMTP commands, SASL responses and replies.
//!
//! RFC 5321 §2.3.8 says lines end with CRLF and that a bare CR or bare LF must not be
//! treated as a line end by a strict receiver. Real peers send both anyway, and the
//! "SMTP smuggling" attacks (`\n.\r\n`, `\r\n.\n`) live in exactly that gap. This
//! reader therefore splits at every LF (so it never hangs on a peer that sends bare
//! LF) but reports each irregularity as a [`Deviation`] on the [`Line`] it belongs
//! to. Nothing is normalised: the caller decides whether to tolerate or reject.
//!
//! Memory: the reader holds at most what was pushed and not yet consumed. A line
//! longer than the limit is cut at the limit and the rest is discarded as it arrives,
//! so a 1 MB line never sits in memory if the driver alternates `push` and
//! `next_line`. The driver must not push unboundedly without draining: check
//! [`LineReader::buffered`] before reading more from the socket.

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
pub const COMMAND_LINE_LIMIT: usize = 512;

/// RFC 4954 §5: "the MAIL FROM command line length may be up to 500 octets longer"
/// when the `AUTH=` parameter is used.
pub const MAIL_AUTH_EXTRA: usize = 500;

/// RFC 4954 §4: a server must accept SASL response lines of at least 12288 octets.
/// Postfix' `smtpd_sasl_response_limit` uses the same default.
pub const AUTH_LINE_LIMIT: usize = 12288;

/// RFC 5321 §4.5.3.1.6: a text line (message content, reply lines) is at most 1000
/// octets, CRLF included.
pub const TEXT_LINE_LIMIT: usize = 1000;

/// A way in which a received line departs from strict RFC 5321 framing. Offsets are
/// positions within the line's content (0 is its first octet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Deviation {
    /// RFC 5321 §2.3.8: the line ended in LF without the CR before it.
    BareLf {
        /// Where the LF is.
        offset: usize,
    },
    /// RFC 5321 §2.3.8: a CR inside the line was not followed by LF.
    BareCr {
        /// Where the lone CR is.
        offset: usize,
    },
    /// RFC 5321 §4.1.1 and §2.4: NUL is not a character of any SMTP text.
    Nul {
        /// Where the first NUL is.
        offset: usize,
    },
    /// RFC 5321 §2.4: commands and replies are US-ASCII; an octet ≥ 0x80 needs an
    /// extension (8BITMIME for content, SMTPUTF8 for commands).
    EightBit {
        /// Where the first octet ≥ 0x80 is.
        offset: usize,
    },
    /// A control octet other than HT, CR, LF and NUL (RFC 5321 §4.1.2 `textstring`
    /// and §4.2 admit none of them).
    Control {
        /// Where the first such octet is.
        offset: usize,
    },
    /// RFC 5321 §4.5.3.1.4–6: more than `limit` octets (terminator included) without
    /// a line end. `length` is the number of octets known when the reader gave up:
    /// the reader reports at once instead of waiting for the end, so it is `limit + 1`
    /// for a framed line (or the exact length when a complete line is judged against
    /// a smaller limit after the fact, see [`LineReader::next_command_line`]).
    LineTooLong {
        /// The limit the line broke: [`AUTH_LINE_LIMIT`], a command's or a text line's.
        limit: usize,
        /// The octets known when the reader gave up.
        length: usize,
    },
}

/// The kind of a [`Deviation`], for [`Line::has`] without having to invent offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviationKind {
    /// [`Deviation::BareLf`].
    BareLf,
    /// [`Deviation::BareCr`].
    BareCr,
    /// [`Deviation::Nul`].
    Nul,
    /// [`Deviation::EightBit`].
    EightBit,
    /// [`Deviation::Control`].
    Control,
    /// [`Deviation::LineTooLong`].
    LineTooLong,
}

impl Deviation {
    /// Which rule this deviation breaks, without its position.
    pub fn kind(&self) -> DeviationKind {
        match self {
            Deviation::BareLf { .. } => DeviationKind::BareLf,
            Deviation::BareCr { .. } => DeviationKind::BareCr,
            Deviation::Nul { .. } => DeviationKind::Nul,
            Deviation::EightBit { .. } => DeviationKind::EightBit,
            Deviation::Control { .. } => DeviationKind::Control,
            Deviation::LineTooLong { .. } => DeviationKind::LineTooLong,
        }
    }
}

/// One framed line.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Line {
    /// The content without its terminator (CRLF or bare LF). For an over-long line:
    /// the first `limit` octets as received.
    pub bytes: Vec<u8>,
    /// Every departure from strict framing, at most one of each kind (the first).
    pub deviations: Vec<Deviation>,
}

impl Line {
    /// No deviation at all: CRLF-terminated, no NUL, no 8-bit, no stray CR, in limit.
    pub fn is_clean(&self) -> bool {
        self.deviations.is_empty()
    }

    /// The line exceeded its limit and `bytes` holds only its beginning.
    pub fn too_long(&self) -> bool {
        self.has(DeviationKind::LineTooLong)
    }

    /// Whether the line departs from strict framing in this way.
    pub fn has(&self, kind: DeviationKind) -> bool {
        has_kind(&self.deviations, kind)
    }
}

/// The one test behind [`Line::has`] and [`LineRef::has`].
fn has_kind(deviations: &[Deviation], kind: DeviationKind) -> bool {
    deviations.iter().any(|d| d.kind() == kind)
}

/// One framed line that borrows its content from the [`LineReader`]'s buffer, for a
/// caller that is done with the line before it reads the next one: no copy and, for
/// a line without deviations, no allocation at all (an empty `Vec` allocates
/// nothing). The framing and the deviations are those of [`Line`], octet for octet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRef<'a> {
    /// As [`Line::bytes`].
    pub bytes: &'a [u8],
    /// As [`Line::deviations`].
    pub deviations: Vec<Deviation>,
}

impl LineRef<'_> {
    /// As [`Line::is_clean`].
    pub fn is_clean(&self) -> bool {
        self.deviations.is_empty()
    }

    /// As [`Line::too_long`].
    pub fn too_long(&self) -> bool {
        self.has(DeviationKind::LineTooLong)
    }

    /// As [`Line::has`].
    pub fn has(&self, kind: DeviationKind) -> bool {
        has_kind(&self.deviations, kind)
    }

    /// The same line, owning a copy of its content.
    pub fn into_owned(self) -> Line {
        Line {
            bytes: self.bytes.to_vec(),
            deviations: self.deviations,
        }
    }
}

/// Scans `content` (a line without its terminator) for the deviations of its bytes.
/// `ends_line` says whether the content is complete, so that a CR as its last octet
/// is known not to precede the LF; for a truncated line that CR may well be followed
/// by LF, so it is not reported.
pub fn scan_deviations(content: &[u8], ends_line: bool, out: &mut Vec<Deviation>) {
    let Some(first) = first_irregular(content) else {
        return;
    };
    let (mut cr, mut nul, mut eight, mut ctl) = (false, false, false, false);
    for (offset, &b) in content.iter().enumerate().skip(first) {
        // Printable ASCII and HT dominate real traffic; one range check skips them.
        if (0x20..0x7f).contains(&b) || b == b'\t' {
            continue;
        }
        match b {
            b'\r' if !cr && (ends_line || offset + 1 < content.len()) => {
                cr = true;
                out.push(Deviation::BareCr { offset });
            }
            // A LF can be inside content only if a caller passes unframed bytes.
            b'\n' if !ctl => {
                ctl = true;
                out.push(Deviation::Control { offset });
            }
            0 if !nul => {
                nul = true;
                out.push(Deviation::Nul { offset });
            }
            0x80..=0xff if !eight => {
                eight = true;
                out.push(Deviation::EightBit { offset });
            }
            0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f if !ctl => {
                ctl = true;
                out.push(Deviation::Control { offset });
            }
            _ => {}
        }
    }
}

/// The offset of the first octet outside printable ASCII and HT, the only octets
/// that can start a deviation. Almost every line has none before its CR, so this is
/// the whole scan for them.
#[inline]
fn first_irregular(content: &[u8]) -> Option<usize> {
    // Eight octets at a time. The lowest flagged octet of a word is exact (see
    // `irregular_mask`), so its position comes from one `trailing_zeros` instead of
    // a loop over the word whose exit the branch predictor cannot guess. HT is
    // flagged but regular: the search goes on from the octet after it, in a fresh
    // word, since the flags above an HT may be its borrow.
    const WORD: usize = 8;
    let len = content.len();
    let mut base = 0;
    while base + WORD <= len {
        let mask = irregular_mask(&content[base..base + WORD]);
        if mask != 0 {
            let i = base + (mask.trailing_zeros() / 8) as usize;
            if content[i] != b'\t' {
                return Some(i);
            }
            base = i + 1;
        } else {
            base += WORD;
        }
    }
    // Fewer than eight octets left, octet by octet: a line's own CR is seldom among
    // them, since the window runs on into the lines pipelined after it.
    content[base..]
        .iter()
        .position(|&b| irregular(b))
        .map(|j| base + j)
}

fn irregular(b: u8) -> bool {
    !((0x20..0x7f).contains(&b) || b == b'\t')
}

/// The high bit of each of the eight octets that is < 0x20, 0x7f or ≥ 0x80, except
/// that octets above the lowest flagged one may be flagged wrongly (a subtraction's
/// borrow runs upwards). The lowest flagged octet is always a real one, and no
/// octet below it is one: that is all [`first_irregular`] reads. HT is flagged too.
#[inline]
fn irregular_mask(word: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut octets = [0; 8];
    octets.copy_from_slice(word);
    let w = u64::from_le_bytes(octets);
    // The lowest octet below 0x20 borrows from no lower octet and so sets its high
    // bit in `w - 0x20…`; `!w` keeps only octets that were below 0x80 themselves.
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let del = w ^ (ONES * 0x7f);
    let is_del = del.wrapping_sub(ONES) & !del;
    (w | below_space | is_del) & HIGH
}

/// Frames one complete line `raw` (terminator included, so it ends in LF) into a
/// [`Line`]. This is the non-incremental fast path; [`LineReader`] uses it too.
pub fn frame_complete(raw: &[u8]) -> Line {
    frame_complete_ref(raw).into_owned()
}

/// [`frame_complete`] without copying the content: the line borrows from `raw`.
pub fn frame_complete_ref(raw: &[u8]) -> LineRef<'_> {
    let without_lf = raw.strip_suffix(b"\n").unwrap_or(raw);
    let (content, bare_lf) = match without_lf.strip_suffix(b"\r") {
        Some(c) => (c, false),
        None => (without_lf, true),
    };
    let mut deviations = Vec::new();
    scan_deviations(content, true, &mut deviations);
    if bare_lf {
        deviations.push(Deviation::BareLf {
            offset: content.len(),
        });
    }
    LineRef {
        bytes: content,
        deviations,
    }
}

/// The line limit for a command line (content without terminator): 512, or 1012 for
/// `MAIL` carrying an `AUTH=` parameter (RFC 4954 §5).
pub fn command_limit(line: &[u8]) -> usize {
    if is_mail(line) && has_auth_param(line) {
        COMMAND_LINE_LIMIT + MAIL_AUTH_EXTRA
    } else {
        COMMAND_LINE_LIMIT
    }
}

fn is_mail(line: &[u8]) -> bool {
    line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"MAIL")
}

fn has_auth_param(line: &[u8]) -> bool {
    // The parameter follows a space after the path; a mailbox cannot hold " AUTH="
    // unquoted, and a false positive only grants the extra 500 octets.
    // Same test as looking at every 6-octet window for " AUTH=" (case-insensitive),
    // but only where the line has a '=', which a MAIL line has few of.
    memchr::memchr_iter(b'=', line)
        .any(|eq| eq >= 5 && line[eq - 5..eq].eq_ignore_ascii_case(b" AUTH"))
}

/// Incremental CRLF line reader. See the module documentation for its rules.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    start: usize,
    /// An over-long line was reported; drop input up to and including the next LF.
    discarding: bool,
}

impl LineReader {
    /// An empty reader, at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes. The driver bounds how much it pushes before draining
    /// with [`Self::next_line`]; see [`Self::buffered`].
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Octets pushed and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The unconsumed octets, without consuming them.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Removes and returns every unconsumed octet. After STARTTLS (RFC 3207 §4.2,
    /// CVE-2011-0411), anything still buffered was sent in plaintext before the TLS
    /// handshake and must not be treated as a command.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.discarding = false;
        rest
    }

    /// Whether the reader is skipping the rest of an over-long line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// The next line, judged against `limit` octets including the terminator.
    /// `None` means more input is needed.
    pub fn next_line(&mut self, limit: usize) -> Option<Line> {
        self.next_line_ref(limit).map(LineRef::into_owned)
    }

    /// [`Self::next_line`], borrowing the content from the reader's buffer.
    pub fn next_line_ref(&mut self, limit: usize) -> Option<LineRef<'_>> {
        if !self.skip_discarded() {
            return None;
        }
        self.take_line(limit)
    }

    /// [`Self::next_line_ref`] once the reader is known to be at the start of a line.
    #[inline]
    fn take_line(&mut self, limit: usize) -> Option<LineRef<'_>> {
        let start = self.start;
        let pending = &self.buf[start..];
        let window = &pending[..pending.len().min(limit)];
        // Fast path for the usual line: the first octet outside printable ASCII and
        // HT is the CR of a CRLF inside the window. Then that LF is the first LF, the
        // content before the CR is regular, and the line has no deviation: exactly
        // what the general path below would find, in one pass instead of two.
        if let Some(cr) = first_irregular(window) {
            if window[cr] == b'\r' && window.get(cr + 1) == Some(&b'\n') {
                self.start += cr + 2;
                return Some(LineRef {
                    bytes: &self.buf[start..start + cr],
                    deviations: Vec::new(),
                });
            }
        }
        match memchr::memchr(b'\n', window) {
            Some(lf) => {
                self.start += lf + 1;
                Some(frame_complete_ref(&self.buf[start..=start + lf]))
            }
            // `limit` octets without LF: with the LF still to come the line has at
            // least `limit + 1`. Deciding here, not at the LF, keeps memory bounded
            // and makes the outcome independent of how the input was chunked.
            None if !pending.is_empty() && pending.len() >= limit => {
                self.start += limit;
                self.discarding = true;
                let cut = &self.buf[start..start + limit];
                let mut deviations = Vec::new();
                scan_deviations(cut, false, &mut deviations);
                deviations.push(Deviation::LineTooLong {
                    limit,
                    length: limit.saturating_add(1),
                });
                Some(LineRef {
                    bytes: cut,
                    deviations,
                })
            }
            None => None,
        }
    }

    /// The next command line: 512 octets, or 1012 for `MAIL` with `AUTH=` (RFC 4954
    /// §5). A `MAIL` line is framed against 1012 and then judged against the limit
    /// its complete content calls for, so the result does not depend on chunking.
    pub fn next_command_line(&mut self) -> Option<Line> {
        self.next_command_line_ref().map(LineRef::into_owned)
    }

    /// [`Self::next_command_line`], borrowing the content from the reader's buffer.
    pub fn next_command_line_ref(&mut self) -> Option<LineRef<'_>> {
        if !self.skip_discarded() {
            return None;
        }
        let pending = &self.buf[self.start..];
        if pending.len() < 4 && memchr::memchr(b'\n', pending).is_none() {
            return None;
        }
        if !is_mail(pending) {
            return self.take_line(COMMAND_LINE_LIMIT);
        }
        let mut line = self.take_line(COMMAND_LINE_LIMIT + MAIL_AUTH_EXTRA)?;
        let limit = command_limit(line.bytes);
        let too_long = line.too_long();
        let terminator = if line.has(DeviationKind::BareLf) {
            1
        } else {
            2
        };
        let length = if too_long {
            COMMAND_LINE_LIMIT + MAIL_AUTH_EXTRA + 1
        } else {
            line.bytes.len() + terminator
        };
        if length > limit && limit < COMMAND_LINE_LIMIT + MAIL_AUTH_EXTRA {
            line.bytes = &line.bytes[..line.bytes.len().min(limit)];
            line.deviations.clear();
            scan_deviations(line.bytes, false, &mut line.deviations);
            if !too_long && terminator == 1 {
                line.deviations.push(Deviation::BareLf {
                    offset: line.bytes.len(),
                });
            }
            line.deviations
                .push(Deviation::LineTooLong { limit, length });
        }
        Some(line)
    }

    /// Drops input of an over-long line up to and including its LF. Returns whether
    /// the reader is back at the start of a line.
    fn skip_discarded(&mut self) -> bool {
        if !self.discarding {
            return true;
        }
        match memchr::memchr(b'\n', &self.buf[self.start..]) {
            Some(lf) => {
                self.start += lf + 1;
                self.discarding = false;
                true
            }
            None => {
                self.buf.clear();
                self.start = 0;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time search must find exactly what an octet-by-octet search
    /// finds, for every octet value at every position of every short length (the
    /// overlapping last word included).
    #[test]
    fn first_irregular_matches_the_plain_search() {
        let plain = |c: &[u8]| c.iter().position(|&b| irregular(b));
        for len in 0..40 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut content = vec![b'a'; len];
                    content[at] = b;
                    assert_eq!(first_irregular(&content), plain(&content), "{len} {at} {b}");
                    // An HT before it must not hide it.
                    if at > 0 {
                        content[at - 1] = b'\t';
                        assert_eq!(first_irregular(&content), plain(&content));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Any mix of the octets that matter (HT runs, borrows out of control
        /// octets next to irregular ones, the overlapping last word): the word
        /// search finds what the octet-by-octet search finds.
        #[test]
        fn first_irregular_matches_on_mixed_lines(
            regular in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'\t', b' ', b'~']),
                0..40,
            ),
            mixed in proptest::collection::vec(
                proptest::sample::select(vec![
                    b'a', b'\t', b'\r', b'\n', 0, 0x01, 0x08, 0x1f, 0x7f, 0x80, 0xff,
                ]),
                0..16,
            ),
        ) {
            let content = [regular, mixed].concat();
            let plain = content.iter().position(|&b| irregular(b));
            proptest::prop_assert_eq!(first_irregular(&content), plain);
        }
    }

    /// The CRLF fast path of the reader and the general framing agree.
    #[test]
    fn borrowed_and_owned_framing_agree() {
        let input: &[u8] =
            b"EHLO a\r\nMAIL FROM:<a@b> AUTH=x\r\nx\ty\r\nbare\nc\rr\r\n\x80\x00\r\n";
        let mut reader = LineReader::new();
        reader.push(input);
        let mut rest = input;
        while let Some(line) = reader.next_line_ref(COMMAND_LINE_LIMIT) {
            let lf = memchr::memchr(b'\n', rest).expect("a line end");
            assert_eq!(line.into_owned(), frame_complete(&rest[..=lf]));
            rest = &rest[lf + 1..];
        }
        assert!(rest.is_empty());
    }
}
