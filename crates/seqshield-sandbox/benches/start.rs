//! Sandbox start-up: `/bin/true` bare (fork+exec) and under every control
//! of the default profile, from the start request to the step's end. Needs
//! root and the kernel features of `seqshield sandbox check`.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use seqshield_sandbox::{Profile, Sandbox, Stdio};

fn start(c: &mut Criterion) {
    let mut g = c.benchmark_group("sandbox_start");
    g.sample_size(200);
    g.bench_function("bare_fork_exec_true", |b| {
        b.iter(|| assert!(Command::new("/bin/true").status().unwrap().success()))
    });
    if !seqshield_sandbox::check_features().ready() {
        eprintln!("sandbox_start: kernel features missing; only the bare case ran");
        return;
    }
    let sb = Sandbox::new(Profile::load("genomics-tools").unwrap());
    g.bench_function("sandboxed_true", |b| {
        b.iter(|| {
            let r = sb.run(&["/bin/true".into()], Stdio::default()).unwrap();
            assert!(r.status.success());
        })
    });
    g.finish();
}

criterion_group!(benches, start);
criterion_main!(benches);
