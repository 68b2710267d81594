//! Every example of chapter 23.7 (23.7.2 and 23.7.3) and of the reference
//! notes, with the behaviour the text documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use common::TestNetgroups;
use portcullis_accessfilter::{
    Action, Endpoint, FilterSet, Level, NameLookup, Need, Outcome, Query, Reason, UserLookup,
    Verdict, combine, parse_file, parse_ldap,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A query whose server end is unknown (what-if, as filtertest asks).
fn query(service: &str, addr: &str) -> Query {
    Query::with_endpoints(service, Endpoint::new(ip(addr)), Endpoint::unknown())
}

fn files(allow: &str, deny: &str) -> FilterSet {
    FilterSet::builder()
        .filters("allow", parse_file(allow, Action::Allow).unwrap())
        .filters("deny", parse_file(deny, Action::Deny).unwrap())
        .build()
}

fn named(service: &str, name: &str, addr: &str) -> Query {
    query(service, addr).client_name(NameLookup::Verified(name.into()))
}

fn verdict(set: &FilterSet, q: &Query) -> Verdict {
    set.decide_offline(q).verdict
}

/// The verdict with the lookups done as a server does them (here only the
/// set's netgroup provider answers; names are given).
/// `allow` as the Allow filters, `ALL: ALL` as the Deny filters, with the
/// test netgroups.
fn with_netgroups(allow: &str) -> FilterSet {
    FilterSet::builder()
        .filters("allow", parse_file(allow, Action::Allow).unwrap())
        .filters("deny", parse_file("ALL: ALL\n", Action::Deny).unwrap())
        .netgroups(Arc::new(TestNetgroups))
        .build()
}

fn decided(set: &FilterSet, q: &Query) -> Verdict {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut q = q.clone();
    rt.block_on(set.decide(&mut q, &portcullis_accessfilter::Lookups::default()))
        .verdict
}

#[test]
fn simple_filters_23_7_2() {
    // `imap: roberts.newyork.siroe.com`, `pop: ALL`, `http: ALL` as Allow
    // filters grant; as Deny filters deny.
    let text = "imap: roberts.newyork.siroe.com\npop: ALL\nhttp: ALL\n";
    let allow = files(text, "ALL: ALL\n");
    assert_eq!(
        verdict(
            &allow,
            &named("imap", "roberts.newyork.siroe.com", "192.0.2.1")
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&allow, &named("imap", "other.siroe.com", "192.0.2.2")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&allow, &named("pop", "anything.example", "192.0.2.3")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&allow, &named("http", "anything.example", "192.0.2.3")),
        Verdict::Allow
    );
    let deny = files("", text);
    assert_eq!(
        verdict(
            &deny,
            &named("imap", "roberts.newyork.siroe.com", "192.0.2.1")
        ),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&deny, &named("imap", "other.siroe.com", "192.0.2.2")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&deny, &named("pop", "x.example", "192.0.2.3")),
        Verdict::Deny
    );
}

#[test]
fn extended_filters_23_7_2() {
    // Deny `pop@mailServer1.siroe.com: ALL` and `imap: srashad@xyz.europe.siroe.com`.
    let set = files(
        "",
        "pop@mailServer1.siroe.com: ALL\nimap: srashad@xyz.europe.siroe.com\n",
    );
    let server = |name: &str| {
        let mut e = Endpoint::new(ip("198.51.100.1"));
        e.set_name(NameLookup::Verified(name.into()));
        e
    };
    let q = named("pop", "c.example", "192.0.2.9").server_endpoint(server("mailserver1.siroe.com"));
    assert_eq!(verdict(&set, &q), Verdict::Deny);
    let q = named("pop", "c.example", "192.0.2.9").server_endpoint(server("mailserver2.siroe.com"));
    assert_eq!(verdict(&set, &q), Verdict::Allow);
    let q = named("imap", "xyz.europe.siroe.com", "192.0.2.9")
        .user_lookup(UserLookup::Known("srashad".into()));
    assert_eq!(verdict(&set, &q), Verdict::Deny);
    let q = named("imap", "xyz.europe.siroe.com", "192.0.2.9")
        .user_lookup(UserLookup::Known("other".into()));
    assert_eq!(verdict(&set, &q), Verdict::Allow);
    // The user is looked up only for that host: other hosts need no ident.
    let q = named("imap", "abc.europe.siroe.com", "192.0.2.9");
    assert!(matches!(set.evaluate(&q), Outcome::Done(_)));
}

#[test]
fn service_list_and_domains_23_7_2() {
    let set = files(
        "pop, imap, http: .europe.siroe.com .newyork.siroe.com\n",
        "ALL: ALL\n",
    );
    for svc in ["pop", "imap", "http"] {
        assert_eq!(
            verdict(&set, &named(svc, "a.europe.siroe.com", "192.0.2.1")),
            Verdict::Allow
        );
        assert_eq!(
            verdict(&set, &named(svc, "b.newyork.siroe.com", "192.0.2.1")),
            Verdict::Allow
        );
        assert_eq!(
            verdict(&set, &named(svc, "c.asia.siroe.com", "192.0.2.1")),
            Verdict::Deny
        );
    }
    assert_eq!(
        verdict(&set, &named("smtp", "a.europe.siroe.com", "192.0.2.1")),
        Verdict::Deny
    );
}

#[test]
fn ldap_forms_from_the_schema_reference() {
    // `+imap,pop,http:*` enables those services for all clients.
    let set = FilterSet::from_ldap("attr", "+imap,pop,http:*").unwrap();
    for svc in ["imap", "pop", "http"] {
        assert_eq!(
            verdict(&set, &named(svc, "x.example", "192.0.2.1")),
            Verdict::Allow
        );
    }
    // Allow filters only apply to those services: others have no filter, so
    // they are granted.
    assert_eq!(
        verdict(&set, &named("smtp", "x.example", "192.0.2.1")),
        Verdict::Allow
    );

    let set = FilterSet::from_ldap("attr", "+imap:ALL$+pop:ALL$+http:ALL").unwrap();
    assert_eq!(set.allow().len(), 3);
    assert_eq!(
        verdict(&set, &named("pop", "x.example", "192.0.2.1")),
        Verdict::Allow
    );

    // Disallow all services for a user.
    let set = FilterSet::from_ldap("attr", "-imap:*$-pop:*$-http:*").unwrap();
    for svc in ["imap", "pop", "http"] {
        assert_eq!(
            verdict(&set, &named(svc, "x.example", "192.0.2.1")),
            Verdict::Deny
        );
    }

    // `-ALL:ALL EXCEPT server1.sesta.com`.
    let set = FilterSet::from_ldap("attr", "-ALL:ALL EXCEPT server1.sesta.com").unwrap();
    assert_eq!(
        verdict(&set, &named("imap", "server1.sesta.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("imap", "server2.sesta.com", "192.0.2.2")),
        Verdict::Deny
    );

    // SSL only: `+imaps,pops:*$+imap,pop:<MMP IP address>`.
    let set = FilterSet::from_ldap("attr", "+imaps,pops:*$+imap,pop:192.0.2.100").unwrap();
    assert_eq!(
        verdict(&set, &query("imaps", "203.0.113.5")),
        Verdict::Allow
    );
    assert_eq!(verdict(&set, &query("imap", "192.0.2.100")), Verdict::Allow);
    assert_eq!(verdict(&set, &query("imap", "203.0.113.5")), Verdict::Deny);
    assert_eq!(verdict(&set, &query("pop", "203.0.113.5")), Verdict::Deny);

    // The example: `+imap,pop:ALL$-http:*$-ALL:ALL EXCEPT server1.example.com`.
    let f = parse_ldap("+imap,pop:ALL$-http:*$-ALL:ALL EXCEPT server1.example.com").unwrap();
    assert_eq!(f.len(), 3);
    let set = FilterSet::builder()
        .filters("mailAllowedServiceAccess", f)
        .build();
    assert_eq!(
        verdict(&set, &named("imap", "c.example.org", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("http", "server1.example.com", "192.0.2.1")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&set, &named("smtp", "server1.example.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("smtp", "c.example.org", "192.0.2.1")),
        Verdict::Deny
    );
}

#[test]
fn wildcard_names_table_23_3() {
    let deny_all = "ALL: ALL\n";
    let local = files("ALL: LOCAL\n", deny_all);
    assert_eq!(
        verdict(&local, &named("imap", "printer", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&local, &named("imap", "printer.example.com", "192.0.2.1")),
        Verdict::Deny
    );

    let unknown = files("ALL: UNKNOWN\n", deny_all);
    let q = query("imap", "192.0.2.1").client_name(NameLookup::Unknown);
    assert_eq!(verdict(&unknown, &q), Verdict::Allow);
    assert_eq!(
        verdict(&unknown, &named("imap", "a.example", "192.0.2.1")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(
            &unknown,
            &Query::with_endpoints("imap", Endpoint::unknown(), Endpoint::unknown())
        ),
        Verdict::Allow
    );

    let known = files("ALL: KNOWN\n", deny_all);
    assert_eq!(
        verdict(&known, &named("imap", "a.example", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(verdict(&known, &q), Verdict::Deny);

    // Users: `KNOWN@ALL`, `UNKNOWN@ALL`.
    let known_user = files("ALL: KNOWN@ALL\n", deny_all);
    let with_user = query("imap", "192.0.2.1").user_lookup(UserLookup::Known("joe".into()));
    assert_eq!(verdict(&known_user, &with_user), Verdict::Allow);
    let no_user = query("imap", "192.0.2.1").user_lookup(UserLookup::Unknown);
    assert_eq!(verdict(&known_user, &no_user), Verdict::Deny);
    let unknown_user = files("ALL: UNKNOWN@ALL\n", deny_all);
    assert_eq!(verdict(&unknown_user, &no_user), Verdict::Allow);
}

#[test]
fn temporary_dns_failure_never_flips_known_unknown() {
    let failed = query("imap", "192.0.2.1").client_name(NameLookup::Tempfail);
    for (allow, deny) in [
        ("ALL: KNOWN\n", "ALL: ALL\n"),
        ("ALL: UNKNOWN\n", "ALL: ALL\n"),
        ("", "ALL: DNSSPOOFER\n"),
        ("", "ALL: UNKNOWN\n"),
        ("", "ALL: KNOWN\n"),
    ] {
        let set = files(allow, deny);
        let d = set.decide_offline(&failed);
        assert_eq!(d.verdict, Verdict::Tempfail, "{allow:?} {deny:?}: {d}");
        assert!(matches!(d.reason, Reason::LookupFailed(_)));
    }
    // When the name cannot change the answer, the failure does not matter.
    let set = files("ALL: 192.0.2.0/24\n", "ALL: KNOWN\n");
    assert_eq!(verdict(&set, &failed), Verdict::Allow);
}

#[test]
fn mostly_denying_23_7_3() {
    let set = FilterSet::builder()
        .filters(
            "allow",
            parse_file(
                "ALL: LOCAL @netgroup1\nALL: .siroe.com EXCEPT externalserver.siroe.com\n",
                Action::Allow,
            )
            .unwrap(),
        )
        .filters("deny", parse_file("ALL: ALL\n", Action::Deny).unwrap())
        .build();
    assert_eq!(
        verdict(&set, &named("imap", "localbox", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("imap", "a.siroe.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("pop", "b.eng.siroe.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(
            &set,
            &named("imap", "externalserver.siroe.com", "192.0.2.1")
        ),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&set, &named("imap", "other.example.org", "192.0.2.1")),
        Verdict::Deny
    );
    // Without a netgroup provider, @netgroup1 never matches.
    assert_eq!(
        verdict(&set, &named("imap", "h1.d0.test", "192.0.2.1")),
        Verdict::Deny
    );

    // With one, members are allowed.
    let set = with_netgroups("ALL: LOCAL @group0\n");
    assert_eq!(
        decided(&set, &named("imap", "h1.d0.test", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        decided(&set, &named("imap", "h1.d1.test", "192.0.2.1")),
        Verdict::Deny
    );
    // Without lookups a membership is unknown: not a member.
    assert_eq!(
        verdict(&set, &named("imap", "h1.d0.test", "192.0.2.1")),
        Verdict::Deny
    );
    // group1's provider fails temporarily: tempfail, never a guess.
    let set = with_netgroups("ALL: @group1\n");
    assert_eq!(
        decided(&set, &named("imap", "h1.d0.test", "192.0.2.1")),
        Verdict::Tempfail
    );
}

#[test]
fn mostly_allowing_23_7_3() {
    let set = files(
        "",
        "ALL: externalserver.siroe1.com, .siroe.asia.com\nALL EXCEPT pop: contractor.siroe1.com, .siroe.com\n",
    );
    for svc in ["imap", "pop", "http"] {
        assert_eq!(
            verdict(&set, &named(svc, "externalserver.siroe1.com", "192.0.2.1")),
            Verdict::Deny
        );
        assert_eq!(
            verdict(&set, &named(svc, "x.siroe.asia.com", "192.0.2.1")),
            Verdict::Deny
        );
        assert_eq!(
            verdict(&set, &named(svc, "elsewhere.example", "192.0.2.1")),
            Verdict::Allow
        );
    }
    // Nothing but POP from contractor.siroe1.com and from .siroe.com.
    assert_eq!(
        verdict(&set, &named("pop", "contractor.siroe1.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("imap", "contractor.siroe1.com", "192.0.2.1")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&set, &named("pop", "a.siroe.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("http", "a.siroe.com", "192.0.2.1")),
        Verdict::Deny
    );
}

#[test]
fn spoofed_domains_23_7_3() {
    let set = files("", "ALL: DNSSPOOFER\n");
    let spoofed =
        query("imap", "192.0.2.1").client_name(NameLookup::Mismatch("bank.example".into()));
    assert_eq!(verdict(&set, &spoofed), Verdict::Deny);
    assert_eq!(
        verdict(&set, &named("imap", "honest.example", "192.0.2.1")),
        Verdict::Allow
    );
    // tcp_wrappers' spelling.
    let set = files("", "ALL: PARANOID\n");
    assert_eq!(verdict(&set, &spoofed), Verdict::Deny);
}

#[test]
fn virtual_domains_23_7_3() {
    let set = files(
        "ALL@192.0.2.1: .domain1.example\nALL@192.0.2.2: .domain2.example\n",
        "ALL: ALL\n",
    );
    let to = |server: &str, name: &str| {
        named("imap", name, "203.0.113.9").server_endpoint(Endpoint::new(ip(server)))
    };
    assert_eq!(
        verdict(&set, &to("192.0.2.1", "a.domain1.example")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &to("192.0.2.1", "a.domain2.example")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&set, &to("192.0.2.2", "a.domain2.example")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &to("192.0.2.3", "a.domain1.example")),
        Verdict::Deny
    );
}

#[test]
fn webmail_but_not_imap_23_7_3() {
    // `+imap:access_server_host, access_server_host`: IMAP only from the
    // access servers; webmail (http) has no filter and stays open.
    let set = FilterSet::from_ldap(
        "mailAllowedServiceAccess",
        "+imap:access1.example, access2.example",
    )
    .unwrap();
    assert_eq!(
        verdict(&set, &named("imap", "access1.example", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("imap", "access2.example", "192.0.2.2")),
        Verdict::Allow
    );
    let d = set.decide_offline(&named("imap", "laptop.example", "192.0.2.3"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.reason, Reason::NoMatch { allow_only: true });
    assert_eq!(
        verdict(&set, &named("http", "laptop.example", "192.0.2.3")),
        Verdict::Allow
    );
}

#[test]
fn allow_only_implicit_deny_differs_from_tcp_wrappers() {
    let set = FilterSet::from_files(Some(("allow", "imap: 192.0.2.0/24\n")), None).unwrap();
    assert!(set.is_allow_only());
    assert_eq!(verdict(&set, &query("imap", "192.0.2.1")), Verdict::Allow);
    assert_eq!(verdict(&set, &query("imap", "198.51.100.1")), Verdict::Deny);
    // An empty set grants everything.
    let empty = FilterSet::from_files(None, None).unwrap();
    assert_eq!(
        verdict(&empty, &query("imap", "198.51.100.1")),
        Verdict::Allow
    );
}

#[test]
fn except_nests_to_the_right() {
    // ALL EXCEPT .siroe.com EXCEPT a.siroe.com == ALL EXCEPT (.siroe.com EXCEPT a.siroe.com)
    let set = files("", "ALL: ALL EXCEPT .siroe.com EXCEPT a.siroe.com\n");
    assert_eq!(
        verdict(&set, &named("imap", "x.example", "192.0.2.1")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&set, &named("imap", "b.siroe.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("imap", "a.siroe.com", "192.0.2.1")),
        Verdict::Deny
    );
    // In the service list too.
    let set = files("", "ALL EXCEPT imap pop EXCEPT pop: ALL\n");
    assert_eq!(verdict(&set, &query("imap", "192.0.2.1")), Verdict::Allow);
    assert_eq!(verdict(&set, &query("pop", "192.0.2.1")), Verdict::Deny);
    assert_eq!(verdict(&set, &query("http", "192.0.2.1")), Verdict::Deny);
}

#[test]
fn selective_ident_lookups_notes() {
    // `serviceList: @xyzcorp.com ALL@ALL` in the notes is the chapter's
    // advice to look up users selectively; with our syntax the rule
    // `imap: .xyzcorp.com, KNOWN@ALL` needs no ident for xyzcorp hosts.
    let set = files("imap: .xyzcorp.com, KNOWN@ALL\n", "ALL: ALL\n");
    let q = named("imap", "a.xyzcorp.com", "192.0.2.1");
    assert!(matches!(set.evaluate(&q), Outcome::Done(_)));
    let q = named("imap", "b.example", "192.0.2.1");
    assert_eq!(set.evaluate(&q), Outcome::Need(Need::User));
}

#[test]
fn address_only_decisions_do_no_lookups() {
    let set = files(
        "imap: 192.168. 10.0.0.0/255.0.0.0 [2001:db8::]/32\n",
        "ALL: ALL\n",
    );
    for a in ["192.168.4.4", "10.1.2.3", "2001:db8::77", "203.0.113.1"] {
        assert!(
            matches!(set.evaluate(&query("imap", a)), Outcome::Done(_)),
            "{a}"
        );
    }
}

#[test]
fn levels_any_deny_wins() {
    let service = files("", "imap: 203.0.113.\n");
    let domain =
        FilterSet::from_ldap("mailDomainAllowedServiceAccess", "+imap,pop,smtp,http:ALL").unwrap();
    let user = FilterSet::from_ldap("mailAllowedServiceAccess", "+imap,pop:ALL$-http:*").unwrap();
    let q = query("imap", "192.0.2.1");
    let c = combine(vec![
        (Level::Service, service.decide_offline(&q)),
        (Level::Domain, domain.decide_offline(&q)),
        (Level::User, user.decide_offline(&q)),
    ]);
    assert_eq!(c.verdict, Verdict::Allow);
    let q = query("http", "192.0.2.1");
    let c = combine(vec![
        (Level::Service, service.decide_offline(&q)),
        (Level::Domain, domain.decide_offline(&q)),
        (Level::User, user.decide_offline(&q)),
    ]);
    assert_eq!(c.verdict, Verdict::Deny);
    assert_eq!(c.decided_by, Some(2));
    assert!(c.to_string().contains("user level (decisive)"), "{c}");
    let q = query("imap", "203.0.113.5");
    let c = combine(vec![
        (Level::Service, service.decide_offline(&q)),
        (Level::User, user.decide_offline(&q)),
    ]);
    assert_eq!((c.verdict, c.decided_by), (Verdict::Deny, Some(0)));
}

#[test]
fn explanations_name_list_source_line_and_pattern() {
    let set = FilterSet::from_files(
        Some((
            "hosts.allow",
            "# comment\nimap: 10.0.0.1\n\nimap, pop: .example.com EXCEPT bad.example.com\n",
        )),
        Some(("hosts.deny", "ALL: ALL\n")),
    )
    .unwrap();
    let d = set.decide_offline(&named("pop", "good.example.com", "192.0.2.1"));
    let Reason::Matched(m) = &d.reason else {
        panic!("{d}")
    };
    assert_eq!(m.list, Action::Allow);
    assert_eq!(&*m.source, "hosts.allow");
    assert_eq!((m.origin.line, m.origin.rule), (4, 2));
    assert_eq!(m.service_pattern, "pop");
    assert_eq!(m.client_pattern, ".example.com");
    let d = set.decide_offline(&named("pop", "bad.example.com", "192.0.2.1"));
    let Reason::Matched(m) = &d.reason else {
        panic!("{d}")
    };
    assert_eq!(
        (&*m.source, m.origin.line, m.client_pattern.as_str()),
        ("hosts.deny", 1, "ALL")
    );
    let text = d.to_string();
    assert!(text.contains("hosts.deny line 1"), "{text}");
    let none = FilterSet::from_files(None, Some(("hosts.deny", "imap: 10.0.0.1\n"))).unwrap();
    let d = none.decide_offline(&query("imap", "10.0.0.2"));
    assert_eq!(d.reason, Reason::NoMatch { allow_only: false });
}

/// `@xyzcorp.com` as a netgroup: the hosts of xyzcorp.com.
#[derive(Debug)]
struct XyzCorp;

impl portcullis_accessfilter::NetgroupProvider for XyzCorp {
    fn contains<'a>(
        &'a self,
        netgroup: &'a str,
        host: &'a str,
    ) -> portcullis_accessfilter::BoxFuture<'a, Option<bool>> {
        let a = Some(netgroup == "xyzcorp.com" && host.ends_with(".xyzcorp.com"));
        Box::pin(async move { a })
    }
}

/// `allow` as the Allow filters, `ALL: ALL` as the Deny filters, with the
/// xyzcorp.com netgroup.
fn xyzcorp_set(allow: &str) -> FilterSet {
    FilterSet::builder()
        .filters("allow", parse_file(allow, Action::Allow).unwrap())
        .filters("deny", parse_file("ALL: ALL\n", Action::Deny).unwrap())
        .netgroups(Arc::new(XyzCorp))
        .build()
}

#[test]
fn selective_ident_lookups_as_the_notes_write_them() {
    // `serviceList: @xyzcorp.com ALL@ALL`, literally. The chapter's point
    // is cost: members of the netgroup are decided without an ident
    // lookup, everyone else through `ALL@ALL`, which in tcp_wrappers costs
    // one. Here `ALL` matches every user, looked up or not, so no client
    // waits for ident at all; a user pattern that needs the name does.
    let set = xyzcorp_set("imap: @xyzcorp.com ALL@ALL\n");
    let q = named("imap", "a.xyzcorp.com", "192.0.2.1");
    assert!(matches!(set.evaluate(&q), Outcome::Done(_)));
    assert_eq!(decided(&set, &q), Verdict::Allow);
    let q = named("imap", "b.example", "192.0.2.1");
    assert!(matches!(set.evaluate(&q), Outcome::Done(_)));
    assert_eq!(decided(&set, &q), Verdict::Allow);
    // A user pattern that needs the name: membership is asked first, and a
    // member is decided without ident.
    let set = xyzcorp_set("imap: @xyzcorp.com KNOWN@ALL\n");
    let mut member = named("imap", "a.xyzcorp.com", "192.0.2.1");
    assert_eq!(set.evaluate(&member), Outcome::Need(Need::Netgroups));
    member.record_netgroup("xyzcorp.com", "a.xyzcorp.com", Some(true));
    assert!(matches!(set.evaluate(&member), Outcome::Done(_)));
    let mut other = named("imap", "b.example", "192.0.2.1");
    assert_eq!(set.evaluate(&other), Outcome::Need(Need::Netgroups));
    other.record_netgroup("xyzcorp.com", "b.example", Some(false));
    assert_eq!(set.evaluate(&other), Outcome::Need(Need::User));
    // A membership lookup that failed never flips the decision.
    let mut failed = named("imap", "a.xyzcorp.com", "192.0.2.1");
    failed.record_netgroup("xyzcorp.com", "a.xyzcorp.com", None);
    failed.set_user(UserLookup::Unknown);
    assert_eq!(verdict(&set, &failed), Verdict::Tempfail);
}

#[test]
fn netgroup_names_are_case_sensitive() {
    let set = xyzcorp_set;
    // The netgroup's name is passed on as written: `@XYZCORP.COM` is
    // another netgroup than `@xyzcorp.com`.
    let q = named("imap", "a.xyzcorp.com", "192.0.2.1");
    assert_eq!(decided(&set("imap: @xyzcorp.com\n"), &q), Verdict::Allow);
    assert_eq!(decided(&set("imap: @XYZCORP.COM\n"), &q), Verdict::Deny);
}

#[test]
fn all_except_one_server_as_the_notes_write_it() {
    // Deny `ALL: ALL EXCEPT isserver.siroe.com`: only isserver gets in.
    let set = files("", "ALL: ALL EXCEPT isserver.siroe.com\n");
    assert_eq!(
        verdict(&set, &named("imap", "isserver.siroe.com", "192.0.2.1")),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, &named("pop", "other.siroe.com", "192.0.2.2")),
        Verdict::Deny
    );
    assert_eq!(verdict(&set, &query("http", "192.0.2.3")), Verdict::Deny);
}

/// A parameter in the LDAP form mixes actions: each rule keeps its own,
/// and every decision names the parameter the deciding rule came from.
#[test]
fn each_filter_keeps_its_action_and_its_source() {
    let allowed = portcullis_accessfilter::parse_filter_list(
        "+imap:10.0.0.0/8$-imap:192.0.2.66",
        Action::Allow,
    )
    .unwrap();
    let not_allowed =
        portcullis_accessfilter::parse_filter_list("pop: 198.51.100.0/24", Action::Deny).unwrap();
    let set = FilterSet::builder()
        .filters("service.imap.domainallowed", allowed)
        .filters("service.imap.domainnotallowed", not_allowed)
        .build();
    let why = |q: &Query| match set.decide_offline(q).reason {
        Reason::Matched(m) => (m.list, m.source.to_string()),
        other => panic!("{other:?}"),
    };
    // The `-` rule of domainallowed is a deny, named by its parameter.
    let d = set.decide_offline(&query("imap", "192.0.2.66"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(
        why(&query("imap", "192.0.2.66")),
        (Action::Deny, "service.imap.domainallowed".to_owned())
    );
    // A deny of the other parameter is named by that one.
    assert_eq!(
        why(&query("pop", "198.51.100.9")),
        (Action::Deny, "service.imap.domainnotallowed".to_owned())
    );
    assert_eq!(
        why(&query("imap", "10.1.2.3")),
        (Action::Allow, "service.imap.domainallowed".to_owned())
    );
    // The order within a list is the order filters were added in.
    assert!(set.deny()[0].to_string().contains("192.0.2.66"));
    let sources: Vec<&str> = set.filters_with_sources().map(|(_, s)| s).collect();
    assert_eq!(
        sources,
        [
            "service.imap.domainallowed",
            "service.imap.domainallowed",
            "service.imap.domainnotallowed"
        ]
    );
}

/// `imap` matches every IMAP connection, `imaps` only TLS-protected ones;
/// an IMAPS query is an IMAP query with TLS.
#[test]
fn tls_service_names() {
    let local: std::net::SocketAddr = "192.0.2.1:993".parse().unwrap();
    let conn = |service: &str, peer: &str| {
        Query::for_connection(service, format!("{peer}:40000").parse().unwrap(), local)
    };
    let q = conn("IMAPS", "203.0.113.5");
    assert_eq!((q.service(), q.is_tls()), ("imap", true));
    let q = conn("pop3s", "203.0.113.5");
    assert_eq!((q.service(), q.is_tls()), ("pop", true));
    let q = conn("imap", "203.0.113.5");
    assert_eq!((q.service(), q.is_tls()), ("imap", false));
    assert!(q.tls(true).is_tls());

    // A deny of every IMAP connection covers IMAPS.
    let deny_imap = files("", "imap: ALL\n");
    assert_eq!(
        verdict(&deny_imap, &conn("imaps", "10.1.2.3")),
        Verdict::Deny
    );
    // A deny of IMAPS only leaves plain IMAP alone.
    let deny_imaps = files("", "imaps: ALL\n");
    assert_eq!(
        verdict(&deny_imaps, &conn("imaps", "10.1.2.3")),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&deny_imaps, &conn("imap", "10.1.2.3")),
        Verdict::Allow
    );
    // `ALL: ALL` denies everything, IMAPS included.
    let all = files("", "ALL: ALL\n");
    for s in ["imap", "imaps", "pops", "smtps", "https"] {
        assert_eq!(verdict(&all, &conn(s, "10.1.2.3")), Verdict::Deny, "{s}");
    }
    // Allow-only over `imaps`: IMAP is allow-only, plain IMAP is denied.
    let tls_only = files("imaps: ALL\n", "");
    assert_eq!(
        verdict(&tls_only, &conn("imaps", "10.1.2.3")),
        Verdict::Allow
    );
    assert_eq!(verdict(&tls_only, &conn("imap", "10.1.2.3")), Verdict::Deny);
    assert!(tls_only.is_allow_only_for("imap"));
    assert!(tls_only.is_allow_only_for("imaps"));
    // Globs see both names.
    let glob = files("", "imap*: ALL\n");
    assert_eq!(verdict(&glob, &conn("imaps", "10.1.2.3")), Verdict::Deny);
    let glob_s = files("", "*s: ALL\n");
    assert_eq!(verdict(&glob_s, &conn("imaps", "10.1.2.3")), Verdict::Deny);
    assert_eq!(verdict(&glob_s, &conn("imap", "10.1.2.3")), Verdict::Allow);
    // The same through the index and the naive reference.
    for set in [&deny_imap, &deny_imaps, &tls_only, &glob_s] {
        for q in [conn("imaps", "10.1.2.3"), conn("imap", "10.1.2.3")] {
            assert_eq!(set.evaluate(&q), set.evaluate_naive(&q));
        }
    }
}

/// A daemon's query always has the server end, so `service@address` rules
/// apply.
#[test]
fn a_connection_query_always_has_the_server_end() {
    let set = files("", "imap@192.0.2.25: ALL\n");
    let q = Query::for_connection(
        "imap",
        "203.0.113.5:40000".parse().unwrap(),
        "192.0.2.25:143".parse().unwrap(),
    );
    assert_eq!(q.server().addr(), Some(ip("192.0.2.25")));
    assert_eq!(q.server().port(), Some(143));
    assert_eq!(q.client().port(), Some(40000));
    assert_eq!(verdict(&set, &q), Verdict::Deny);
    let other = Query::for_connection(
        "imap",
        "203.0.113.5:40000".parse().unwrap(),
        "192.0.2.26:143".parse().unwrap(),
    );
    assert_eq!(verdict(&set, &other), Verdict::Allow);
}

/// `[::ffff:a.b.c.d]` denotes the IPv4 client a.b.c.d, however the client
/// address arrives (IPv4, or IPv4-mapped on a dual-stack socket).
#[test]
fn ipv4_mapped_patterns_match_the_ipv4_client() {
    let set = files("", "imap: [::ffff:192.0.2.1] [::ffff:198.51.100.0]/120\n");
    for client in ["192.0.2.1", "::ffff:192.0.2.1", "198.51.100.77"] {
        assert_eq!(
            verdict(&set, &query("imap", client)),
            Verdict::Deny,
            "{client}"
        );
    }
    assert_eq!(verdict(&set, &query("imap", "192.0.2.2")), Verdict::Allow);
}
