use super::*;
use crate::error::DeviceOp;
use crate::fake::FakeDevice;

fn job() -> (FakeDevice, Job<FakeDevice>) {
    let device = FakeDevice::new();
    let job = Job::new("job-1", device.clone(), PoolConfig::default()).unwrap();
    (device, job)
}

#[test]
fn state_machine_table() {
    use JobEvent as E;
    use JobState as S;
    assert_eq!(S::Created.on(E::Start), Ok(S::Running));
    assert_eq!(S::Running.on(E::BeginWipe), Ok(S::Wiping));
    assert_eq!(S::Wiping.on(E::ContextDestroyed), Ok(S::Destroyed));
    assert_eq!(S::Wiping.on(E::Fail), Ok(S::Failed));
    // No path to Destroyed that skips the wipe.
    for s in [S::Created, S::Running, S::Destroyed, S::Failed] {
        assert!(s.on(E::ContextDestroyed).is_err(), "{s:?}");
    }
    for e in [E::Start, E::BeginWipe, E::ContextDestroyed, E::Fail] {
        assert!(S::Destroyed.on(e).is_err());
        assert!(S::Failed.on(e).is_err());
    }
    assert!(S::Running.on(E::Start).is_err());
}

#[test]
fn context_is_destroyed_after_every_buffer_is_wiped() {
    let (device, mut job) = job();
    job.start().unwrap();
    {
        let pool = job.pool().unwrap();
        let a = pool.acquire(1000).unwrap();
        let b = pool.acquire(5000).unwrap();
        device.write(a.block().unwrap(), b"GATTACA");
        device.write(b.block().unwrap(), b"GATTACA");
    }
    let report = job.finish().unwrap();
    assert_eq!(report.state, JobState::Destroyed);
    assert_eq!(report.stats.wiped, 2);
    assert_eq!(device.destroyed(), Some(0), "no block was live at destroy");
    let ops = device.ops();
    let destroy_at = ops.iter().position(|&o| o == DeviceOp::DestroyContext).unwrap();
    let last_zero = ops.iter().rposition(|&o| o == DeviceOp::Zero).unwrap();
    assert!(last_zero < destroy_at);
}

#[test]
fn pool_is_only_available_while_running() {
    let (_, mut job) = job();
    assert!(job.pool().is_err());
    job.start().unwrap();
    assert!(job.pool().is_ok());
}

#[test]
fn failed_destroy_ends_failed() {
    let (device, job) = job();
    device.fail_next(DeviceOp::DestroyContext);
    assert!(matches!(job.finish(), Err(JobError::Destroy(_))));
}

#[test]
fn failed_release_still_destroys_the_context() {
    let (device, mut job) = job();
    job.start().unwrap();
    drop(job.pool().unwrap().acquire(512).unwrap());
    device.fail_next(DeviceOp::Free);
    assert!(matches!(job.finish(), Err(JobError::Wipe(_))));
    assert!(device.destroyed().is_some());
}

/// A job dropped without `finish` (an early return, a panic) still wipes
/// and destroys its context.
#[test]
fn dropped_job_is_torn_down() {
    let (device, mut job) = job();
    job.start().unwrap();
    drop(job.pool().unwrap().acquire(512).unwrap());
    drop(job);
    assert_eq!(device.destroyed(), Some(0));
}
