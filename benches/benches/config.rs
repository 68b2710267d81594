//! Configuration parsing and editing.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_config::{Config, Kind, PARAMETERS};

/// A file that sets every parameter, with a comment above each.
fn full_file() -> String {
    let mut text = String::new();
    for p in PARAMETERS {
        let value = match p.kind {
            Kind::Bool => "true".to_owned(),
            Kind::Integer { min, .. } => (min + 1).to_string(),
            Kind::Filter => "\"imap: .example.com EXCEPT host.example.com\"".to_owned(),
            _ => "\"value-1 value-2\"".to_owned(),
        };
        text.push_str(&format!("# {}\n{} = {}\n", p.description, p.name, value));
    }
    text
}

fn bench(c: &mut Criterion) {
    let text = full_file();
    c.bench_function("config/parse_all_parameters", |b| {
        b.iter(|| Config::parse(black_box(&text)).expect("bench input parses"));
    });
    let config = Config::parse(&text).expect("bench input parses");
    c.bench_function("config/set_and_render", |b| {
        b.iter(|| {
            let mut c = config.clone();
            c.set("mmp.authservicettl", black_box("1800"))
                .expect("valid value");
            c.to_string()
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
