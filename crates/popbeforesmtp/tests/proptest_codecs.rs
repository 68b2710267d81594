//! Property tests: xtext round trips (RFC 3461 §4) and the reply parser.

use portcullis_popbeforesmtp::relay::xclient::{xtext_decode, xtext_encode};
use portcullis_popbeforesmtp::relay::{Reply, ReplyParser};
use proptest::prelude::*;

proptest! {
    #[test]
    fn xtext_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let enc = xtext_encode(&bytes);
        // Only xchar and hexchar: printable ASCII, no "=", "+" only as +HH.
        prop_assert!(enc.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        prop_assert_eq!(xtext_decode(&enc), Some(bytes));
    }

    #[test]
    fn xtext_decode_then_encode_is_canonical(text in "[!-~]{0,60}") {
        if let Some(bytes) = xtext_decode(&text) {
            // Re-encoding a valid xtext gives it back, except that xchars
            // written as +HH come back literally.
            let again = xtext_encode(&bytes);
            prop_assert_eq!(xtext_decode(&again), Some(bytes));
        }
    }

    #[test]
    fn reply_round_trip_split_anywhere(
        code in prop_oneof![200u16..=259, 300u16..=359, 400u16..=459, 500u16..=559],
        lines in proptest::collection::vec("[ -~]{0,80}", 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        prop_assume!((code / 10) % 10 <= 5);
        let reply = Reply::new(code, lines).expect("valid reply");
        let wire = reply.encode();
        let cut = cut.index(wire.len() + 1);
        let mut p = ReplyParser::new();
        p.feed(&wire[..cut]);
        let early = p.next_reply().expect("valid so far");
        prop_assert!(early.is_none() || cut == wire.len());
        p.feed(&wire[cut..]);
        let got = match early {
            Some(r) => r,
            None => p.next_reply().expect("valid").expect("complete"),
        };
        prop_assert_eq!(got, reply);
        prop_assert_eq!(p.buffered(), 0);
    }
}
