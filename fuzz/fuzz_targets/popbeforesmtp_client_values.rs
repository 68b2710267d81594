#![no_main]
//! A client's HELO name and login as the relay pool checks them, then the
//! XCLIENT commands built from them: never a panic; every value the checks
//! accept fits the commands (no CR/LF, each line within 512 bytes with
//! CRLF, LOGIN, NAME and ADDR only in the last line, every attribute
//! once), and the xtext carried decodes back to the value.
use libfuzzer_sys::fuzz_target;
use portcullis_popbeforesmtp::relay::validate::{check_helo, check_login};
use portcullis_popbeforesmtp::relay::xclient::{
    LAST_COMMAND, MAX_COMMAND_LINE, attributes, command_lines, xtext_decode,
};
use portcullis_popbeforesmtp::relay::{ClientInfo, ClientName};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split).min(rest.len());
    let (Ok(helo), Ok(login)) = (
        std::str::from_utf8(&rest[..cut]),
        std::str::from_utf8(&rest[cut..]),
    ) else {
        return;
    };
    let helo_ok = check_helo(helo, split & 1 == 1).is_ok();
    let login_ok = check_login(login).is_ok();
    let mut client = ClientInfo::new(
        "[2001:db8::1]:65535".parse().expect("addr"),
        "127.0.0.1:25".parse().expect("addr"),
    );
    client.helo = helo_ok.then(|| helo.to_owned());
    client.login = login_ok.then(|| login.to_owned());
    // The host name from a hostile PTR record is the HELO text too.
    client.name = Some(ClientName::Name(helo.to_owned()));
    let all = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"];
    let attrs = attributes(&client, &all);
    let lines = command_lines(&attrs).expect("checked values always fit");
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        assert!(line.len() + 2 <= MAX_COMMAND_LINE);
        assert!(!line.contains(['\r', '\n', '\0']));
        if i != last {
            assert!(
                LAST_COMMAND
                    .iter()
                    .all(|a| !line.contains(&format!(" {a}=")))
            );
        }
    }
    for (name, value) in &attrs {
        let tag = format!(" {name}=");
        let found: Vec<&str> = lines
            .iter()
            .flat_map(|l| l.split(' '))
            .filter(|w| w.starts_with(&tag[1..]))
            .collect();
        assert_eq!(found.len(), 1);
        let encoded = &found[0][tag.len() - 1..];
        let decoded = xtext_decode(encoded).expect("valid xtext");
        // A name too long to go with the login gives way; nothing else does.
        assert!(decoded == value.as_bytes() || (*name == "NAME" && decoded == b"[UNAVAILABLE]"));
    }
});
