//! Fuzz entry points for the SMTP codec. Each never panics on its own account; the
//! `assert!`s state the round-trip invariants a fuzzer should try to break.

use crate::smtp::command;
use crate::smtp::line::{LineReader, frame_complete};
use crate::smtp::reply::{self, ReplyLimits};
use crate::smtp::sasl_frame;
use crate::smtp::xtext as xt;

/// Whatever [`command::parse`] accepts formats to a line that parses back to the same
/// command, and that canonical line is a fixed point of parse/format.
pub fn command(data: &[u8]) {
    if let Ok(cmd) = command::parse(data) {
        let line = cmd.format();
        let again = command::parse(&line);
        assert_eq!(
            again.as_ref(),
            Ok(&cmd),
            "format of {cmd:?} did not parse back"
        );
        assert_eq!(cmd.format(), line);
    }
    // The framer's view of the same bytes must not panic either.
    let _ = command_limit_of(data);
}

fn command_limit_of(data: &[u8]) -> usize {
    crate::smtp::line::command_limit(data)
}

/// A parsed reply formats back to the octets it came from when it had no
/// deviations, and reparses to the same lines in any case; a capability list parsed
/// from it survives `format_reply`.
pub fn reply(data: &[u8]) {
    let limits = ReplyLimits {
        max_line: 256,
        max_lines: 64,
    };
    let Ok(Some((r, used))) = reply::parse_reply(data, &limits) else {
        return;
    };
    assert!(used <= data.len() && used > 0);
    let formatted = r.format();
    if r.deviations.is_empty() {
        assert_eq!(formatted, &data[..used]);
    }
    let long = ReplyLimits {
        max_line: 1 << 16,
        max_lines: 1 << 16,
    };
    match reply::parse_reply(&formatted, &long) {
        Ok(Some((again, n))) => {
            assert_eq!(n, formatted.len());
            assert_eq!(again.lines, r.lines);
            assert_eq!(again.code, r.code);
        }
        other => panic!("formatted reply did not parse back: {other:?}"),
    }
    let _ = r.enhanced();
    let _ = r.text();
    if let Ok(caps) = reply::parse_ehlo(&r) {
        let again = reply::parse_ehlo(&caps.format_reply());
        assert_eq!(again.as_ref(), Ok(&caps));
    }
}

/// Feeding the bytes in chunks (sized by the bytes themselves) yields the same lines
/// as one push, lines never exceed the limit, and the buffer stays bounded.
pub fn line_framer(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let limit = [0usize, 1, 2, 3, 8, 64, 512, 1000][usize::from(selector & 7)];
    let command_mode = selector & 8 != 0;
    let next = |r: &mut LineReader| {
        if command_mode {
            r.next_command_line()
        } else {
            r.next_line(limit)
        }
    };
    let max = if command_mode { 1012 } else { limit };

    let mut whole = LineReader::new();
    whole.push(stream);
    let mut expected = Vec::new();
    while let Some(line) = next(&mut whole) {
        assert!(line.bytes.len() <= max);
        expected.push(line);
    }

    let mut chunked = LineReader::new();
    let mut got = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let size = usize::from(stream[pos] % 13) + 1;
        let end = (pos + size).min(stream.len());
        chunked.push(&stream[pos..end]);
        pos = end;
        while let Some(line) = next(&mut chunked) {
            got.push(line);
        }
        // Drained: what is left is an incomplete line below the limit.
        assert!(chunked.buffered() <= max.max(1));
    }
    assert_eq!(got, expected);

    // A complete line framed at once agrees with the reader on its content.
    if let Some(lf) = stream.iter().position(|&b| b == b'\n') {
        if lf < limit && !command_mode {
            let line = frame_complete(&stream[..=lf]);
            assert_eq!(Some(&line), expected.first());
        }
    }
}

/// xtext: encode/decode round trip both ways, and `encode` is canonical.
pub fn xtext(data: &[u8]) {
    let encoded = xt::encode(data);
    assert_eq!(xt::decode(encoded.as_bytes()).as_deref(), Ok(data));
    assert!(xt::is_canonical(encoded.as_bytes()));
    if let Ok(raw) = xt::decode(data) {
        assert_eq!(xt::decode(xt::encode(&raw).as_bytes()), Ok(raw));
    }
}

/// Strict base64: encode/decode round trip, and any accepted text is the one
/// canonical encoding of what it decodes to.
pub fn sasl_base64(data: &[u8]) {
    let encoded = sasl_frame::encode_strict(data);
    assert_eq!(
        sasl_frame::decode_strict(encoded.as_bytes()).as_deref(),
        Ok(data)
    );
    if let Ok(raw) = sasl_frame::decode_strict(data) {
        assert_eq!(sasl_frame::encode_strict(&raw).as_bytes(), data);
    }
    match sasl_frame::decode_initial_response(data) {
        Ok(raw) => assert_eq!(sasl_frame::encode_initial_response(&raw).as_bytes(), data),
        Err(_) => assert!(data != b"="),
    }
    match sasl_frame::decode_response(data) {
        Ok(sasl_frame::ClientMessage::Cancel) => assert_eq!(data, b"*"),
        Ok(sasl_frame::ClientMessage::Data(raw)) => {
            assert_eq!(sasl_frame::encode_response(&raw).as_bytes(), data);
        }
        Err(_) => {}
    }
    let _ = sasl_frame::decode_challenge(data);
}
