//! Certificate database: `list-certs` and `show-cert` on 1,000 certificates.
//!
//! Each iteration opens the database the way `msgcert` does (read the index,
//! read and check every file it needs), so the figures compare with
//! `certutil -L` on an NSS database of the same certificates
//! (`benches/scripts/certdb-vs-certutil.sh` times both programs).

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_certdb::{
    CertDb, KdfParams, KeyType, Password, PrivateKey, SoftwareSigner, Subject, SubjectFields,
    TrustFlags, Validity, describe, format_list, self_signed,
};

const CERTS: usize = 1000;

fn build() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = Password::new("bench");
    let mut db = CertDb::create(dir.path(), &pw, KdfParams::INSECURE_FAST).expect("create");
    let now = time::OffsetDateTime::now_utc();
    // One key signs all: key generation is not what is measured.
    let key = PrivateKey::generate(KeyType::EcP256).expect("key");
    let signer = SoftwareSigner::new(&key).expect("signer");
    let items: Vec<(String, Vec<u8>, TrustFlags)> = (0..CERTS)
        .map(|i| {
            let mut f = SubjectFields::new(format!("host{i}.example.com"));
            f.org = Some("Portcullis Bench".into());
            f.country = Some("US".into());
            let der = self_signed(
                &signer,
                &Subject::from_fields(&f).expect("subject"),
                Validity::months(now, 3),
            )
            .expect("certificate");
            (format!("cert-{i:04}"), der, TrustFlags::default())
        })
        .collect();
    db.add_certificates_batch(&items).expect("add");
    dir
}

fn bench(c: &mut Criterion) {
    let dir = build();
    let mut g = c.benchmark_group("certdb_1000");
    g.bench_function("list-certs", |b| {
        b.iter(|| {
            let db = CertDb::open(dir.path()).expect("open");
            let all = db.certificates().expect("list");
            let text = format_list(&all, time::OffsetDateTime::now_utc());
            assert!(text.ends_with("1000 certificates found\n"));
            text.len()
        });
    });
    g.bench_function("show-cert", |b| {
        b.iter(|| {
            let db = CertDb::open(dir.path()).expect("open");
            let e = db.certificate("cert-0500").expect("show");
            describe(&e.nickname, &e.info.der, e.trust)
                .expect("describe")
                .len()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
