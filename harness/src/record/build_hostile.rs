//! Hostile input for the whole recording path: no panic, and whatever is written
//! loads again.

use super::*;
use crate::record::events::{Limits, Recorder};

/// Peer-controlled bytes in any order and split never make the recorder, the
/// builder or the renderer panic, and whatever they write loads again.
#[test]
fn arbitrary_dialogs_never_panic_and_always_load() {
    const WORDS: &[&[u8]] = &[
        b"AUTH ",
        b"PLAIN",
        b"LOGIN",
        b"NTLM",
        b"CRAM-MD5",
        b"SCRAM-SHA-1",
        b"AGFsaWNlAHdvbmRlcmxhbmQ=",
        b"334 ",
        b"334",
        b"235 2.7.0 ok",
        b"535 5.7.8 no",
        b"250-",
        b"250 ",
        b"220 ",
        b"354 ",
        b"STARTTLS",
        b"DATA",
        b"BDAT 3 LAST",
        b"BDAT x",
        b".",
        b"*",
        b"=",
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"\xff",
        b"${user}",
        b"$$",
        b"*?\\",
        b"EHLO a.b",
        b"QUIT",
        b" ",
        b"5.7.8",
        b"\x01",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..400 {
        let limits = Limits {
            max_lines: 50,
            max_bytes: 4096,
        };
        let mut r = Recorder::new(limits, round % 2 == 0);
        for _ in 0..(next() % 40) {
            let mut chunk = Vec::new();
            for _ in 0..(next() % 6) {
                chunk.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize]);
            }
            if next() % 2 == 0 {
                let f = r.client_data(&chunk);
                assert!(f.forward <= chunk.len());
            } else {
                let f = r.server_data(&chunk);
                assert!(f.forward <= chunk.len());
                if f.starttls == Some(true) && next() % 2 == 0 {
                    r.tls_established("test");
                }
            }
        }
        if next() % 2 == 0 {
            r.client_closed();
        } else {
            r.server_closed();
        }
        let events = r.finish();
        let info = SessionInfo {
            number: round,
            stamp: "20250101T000000Z".into(),
            client: "c".into(),
            target: "t".into(),
        };
        let rec = build(
            &events,
            &info,
            &Options {
                redact: round % 3 == 0,
            },
        );
        for (file, notes) in [
            (&rec.client, &rec.client_notes),
            (&rec.server, &rec.server_notes),
        ] {
            if let Some(f) = file {
                let text = render(f, &info, notes, false).unwrap();
                if let Err(e) = crate::scenario::load_str(&text, "x.yaml") {
                    panic!("round {round}: {e}\n{text}");
                }
            }
        }
    }
}
