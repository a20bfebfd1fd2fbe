//! Steps started at the same time from several threads of one process (as
//! the job service does): each gets its own uid from the range, and a short
//! step is not held up by a long one that happened to be cloned while the
//! short one's pipes were open.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use seqshield_sandbox::{Profile, Sandbox, Stdio};

#[test]
fn concurrent_steps_are_independent() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root || !seqshield_sandbox::check_features().ready() {
        assert!(std::env::var_os("CI").is_none(), "needs root and the sandbox's kernel features");
        eprintln!("SKIPPED: needs root and the sandbox's kernel features");
        return;
    }
    let sb = Arc::new(Sandbox::new(Profile::load("genomics-tools").unwrap()));
    let n = 12;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (sb, barrier) = (sb.clone(), barrier.clone());
            std::thread::spawn(move || {
                let long = i % 2 == 0;
                let argv: Vec<std::ffi::OsString> =
                    if long { vec!["sleep".into(), "4".into()] } else { vec!["/bin/true".into()] };
                barrier.wait();
                if !long {
                    // start the short ones while the long ones are being cloned
                    std::thread::sleep(Duration::from_millis(i as u64 * 3));
                }
                let t = Instant::now();
                let r = sb.run(&argv, Stdio::default()).unwrap();
                assert!(r.status.success(), "{:?}", r.status);
                (long, t.elapsed(), r.controls.unwrap().user_namespace.host_uid)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut uids: Vec<u32> = results.iter().filter(|r| r.0).map(|r| r.2).collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), n / 2, "steps running at the same time share a uid: {results:?}");
    for (long, took, _) in &results {
        if !long {
            assert!(*took < Duration::from_secs(2), "a short step took {took:?}: held by another step's descriptors");
        }
    }
}
