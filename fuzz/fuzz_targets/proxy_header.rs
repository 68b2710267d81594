//! PROXY protocol headers from a trusted proxy: decoding never panics, a
//! split read gives the same answer, and a decoded header encodes (v2) and
//! decodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_frontend::proxy_protocol::{Decoded, Decoder, Version, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let whole = decode(bytes);
    let cut = usize::from(cut).min(bytes.len());
    let mut decoder = Decoder::new();
    let split = decoder.push(&bytes[..cut]).and_then(|first| match first {
        Some(done) => Ok(Some(done)),
        None => decoder.push(&bytes[cut..]),
    });
    match (&whole, &split) {
        (Ok(Decoded::Complete { header, consumed }), Ok(Some(done))) => {
            assert!(*consumed <= bytes.len());
            assert_eq!(&done.header, header);
            let mut rest = done.rest.clone();
            if cut >= *consumed {
                // The first push completed the header (and may have held
                // client data beyond it); the second was never made.
                assert_eq!(&rest[..], &bytes[*consumed..cut]);
                rest.extend_from_slice(&bytes[cut..]);
            }
            assert_eq!(&rest[..], &bytes[*consumed..]);
            let encoded = header.encode_v2().expect("a decoded header fits v2");
            let Ok(Decoded::Complete {
                header: again,
                consumed,
            }) = decode(&encoded)
            else {
                panic!("encoded header does not decode");
            };
            assert_eq!(consumed, encoded.len());
            if header.version == Version::V2 {
                assert_eq!(&again, header);
            } else {
                assert_eq!(again.source(), header.source());
                assert_eq!(again.destination(), header.destination());
            }
        }
        (Ok(Decoded::Incomplete), Ok(None)) | (Err(_), Err(_)) => {}
        (w, s) => panic!("whole {w:?} but split at {cut} {s:?}"),
    }
});
