//! Line framing: one row per deviation, SMTP smuggling shapes, over-long lines.

use authspec_reference::smtp::line::{
    COMMAND_LINE_LIMIT, Deviation, Line, LineReader, TEXT_LINE_LIMIT, command_limit,
};

fn lines(input: &[u8], limit: usize) -> Vec<Line> {
    let mut r = LineReader::new();
    r.push(input);
    std::iter::from_fn(|| r.next_line(limit)).collect()
}

fn line(bytes: &[u8], deviations: Vec<Deviation>) -> Line {
    Line {
        bytes: bytes.to_vec(),
        deviations,
    }
}

#[test]
fn deviation_table() {
    use Deviation::*;
    let cases: Vec<(&[u8], Vec<Line>)> = vec![
        (b"QUIT\r\n", vec![line(b"QUIT", vec![])]),
        (b"QUIT\n", vec![line(b"QUIT", vec![BareLf { offset: 4 }])]),
        (
            b"QU\rIT\r\n",
            vec![line(b"QU\rIT", vec![BareCr { offset: 2 }])],
        ),
        (
            b"QUIT\r\r\n",
            vec![line(b"QUIT\r", vec![BareCr { offset: 4 }])],
        ),
        (
            b"NO\0OP\r\n",
            vec![line(b"NO\0OP", vec![Nul { offset: 2 }])],
        ),
        (
            b"NOOP \xc3\xa9\r\n",
            vec![line(b"NOOP \xc3\xa9", vec![EightBit { offset: 5 }])],
        ),
        (
            b"NOOP \x01\r\n",
            vec![line(b"NOOP \x01", vec![Control { offset: 5 }])],
        ),
        (b"A\tB\r\n", vec![line(b"A\tB", vec![])]),
        // Only the first occurrence of each kind is kept.
        (
            b"\0\0\x80\x81\r\r\n",
            vec![line(
                b"\0\0\x80\x81\r",
                vec![
                    Nul { offset: 0 },
                    EightBit { offset: 2 },
                    BareCr { offset: 4 },
                ],
            )],
        ),
        (b"\r\n", vec![line(b"", vec![])]),
        (b"\n", vec![line(b"", vec![BareLf { offset: 0 }])]),
        (b"QUIT", vec![]),
        (b"QUIT\r", vec![]),
    ];
    for (input, expected) in cases {
        assert_eq!(lines(input, COMMAND_LINE_LIMIT), expected, "{input:?}");
    }
}

#[test]
fn smuggling_shapes_are_flagged() {
    use Deviation::*;
    // <LF>.<CR><LF>: a bare LF ends the first line, then a "." line that is clean:
    // the bare LF on the line before is what a strict receiver must notice.
    assert_eq!(
        lines(b"data\n.\r\nMAIL FROM:<x@y>\r\n", TEXT_LINE_LIMIT),
        vec![
            line(b"data", vec![BareLf { offset: 4 }]),
            line(b".", vec![]),
            line(b"MAIL FROM:<x@y>", vec![]),
        ]
    );
    // <CR><LF>.<LF>
    assert_eq!(
        lines(b"data\r\n.\nQUIT\r\n", TEXT_LINE_LIMIT),
        vec![
            line(b"data", vec![]),
            line(b".", vec![BareLf { offset: 1 }]),
            line(b"QUIT", vec![]),
        ]
    );
    // <CR>.<CR> never ends a line at all.
    assert_eq!(
        lines(b"data\r.\rQUIT\r\n", TEXT_LINE_LIMIT),
        vec![line(b"data\r.\rQUIT", vec![BareCr { offset: 4 }])]
    );
}

#[test]
fn over_long_line_is_cut_and_the_rest_discarded() {
    let mut input = vec![b'A'; 600];
    input.extend_from_slice(b"\r\nQUIT\r\n");
    let got = lines(&input, COMMAND_LINE_LIMIT);
    assert_eq!(
        got,
        vec![
            line(
                &[b'A'; 512],
                vec![Deviation::LineTooLong {
                    limit: 512,
                    length: 513
                }]
            ),
            line(b"QUIT", vec![]),
        ]
    );
}

#[test]
fn limit_counts_the_crlf() {
    // 510 octets + CRLF = 512: fits. 511 + CRLF = 513: too long.
    let mut fits = vec![b'x'; 510];
    fits.extend_from_slice(b"\r\n");
    assert!(lines(&fits, 512)[0].is_clean());
    let mut over = vec![b'x'; 511];
    over.extend_from_slice(b"\r\n");
    let got = lines(&over, 512);
    assert_eq!(got.len(), 1);
    assert!(got[0].too_long());
    // 511 + bare LF = 512 octets: fits, with its BareLf.
    let mut bare = vec![b'x'; 511];
    bare.push(b'\n');
    assert_eq!(
        lines(&bare, 512)[0].deviations,
        vec![Deviation::BareLf { offset: 511 }]
    );
}

#[test]
fn megabyte_line_never_buffers_a_megabyte() {
    let mut r = LineReader::new();
    let chunk = [b'z'; 4096];
    let mut reported = 0;
    for _ in 0..256 {
        r.push(&chunk);
        while let Some(l) = r.next_line(COMMAND_LINE_LIMIT) {
            assert!(l.too_long());
            reported += 1;
        }
        assert!(r.buffered() < COMMAND_LINE_LIMIT);
        assert!(r.is_discarding());
    }
    assert_eq!(reported, 1);
    r.push(b"tail\r\nNOOP\r\n");
    assert_eq!(r.next_line(COMMAND_LINE_LIMIT), Some(line(b"NOOP", vec![])));
    assert!(!r.is_discarding());
}

#[test]
fn take_buffered_returns_injected_plaintext() {
    // RFC 3207 §4.2 / CVE-2011-0411: a command pipelined behind STARTTLS.
    let mut r = LineReader::new();
    r.push(b"STARTTLS\r\nRSET\r\n");
    assert_eq!(r.next_line(512).unwrap().bytes, b"STARTTLS");
    assert_eq!(r.buffered(), 6);
    assert_eq!(r.take_buffered(), b"RSET\r\n");
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.next_line(512), None);
}

#[test]
fn mail_with_auth_gets_500_more_octets() {
    let mailbox = format!("{}@example.com", "a".repeat(60));
    let auth = "b".repeat(600);
    let with_auth = format!("MAIL FROM:<{mailbox}> AUTH={auth}");
    assert_eq!(command_limit(with_auth.as_bytes()), 1012);
    assert_eq!(command_limit(b"mail FROM:<a@b> auth=x"), 1012);
    assert_eq!(command_limit(b"MAIL FROM:<a@b> SIZE=1"), 512);
    assert_eq!(command_limit(b"RCPT TO:<a@b> AUTH=x"), 512);

    let mut r = LineReader::new();
    r.push(format!("{with_auth}\r\n").as_bytes());
    let l = r.next_command_line().unwrap();
    assert!(l.is_clean(), "{:?}", l.deviations);
    assert_eq!(l.bytes, with_auth.as_bytes());

    // The same length without AUTH= is too long, judged on the complete line.
    let without = format!("MAIL FROM:<{mailbox}> X={auth}");
    let mut r = LineReader::new();
    r.push(format!("{without}\r\nQUIT\r\n").as_bytes());
    let l = r.next_command_line().unwrap();
    assert_eq!(
        l.deviations,
        vec![Deviation::LineTooLong {
            limit: 512,
            length: without.len() + 2
        }]
    );
    assert_eq!(l.bytes.len(), 512);
    assert_eq!(r.next_command_line().unwrap().bytes, b"QUIT");
}

#[test]
fn any_chunking_gives_the_same_lines() {
    let stream = b"EHLO a\r\nMAIL FROM:<x@y>\nDA\rTA\r\n\0\x80\r\n".repeat(3);
    let whole = lines(&stream, 16);
    for size in 1..stream.len() {
        let mut r = LineReader::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(size) {
            r.push(chunk);
            got.extend(std::iter::from_fn(|| r.next_line(16)));
        }
        assert_eq!(got, whole, "chunk size {size}");
    }
}
