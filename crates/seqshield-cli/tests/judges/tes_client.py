"""Outside judge for the TES API: the GA4GH reference client py-tes, used
unmodified, drives a seqshield gateway through a task's whole life.

py-tes gives `requests` no `verify` of its own, so the gateway's
self-signed certificate is pinned through REQUESTS_CA_BUNDLE (requests reads
it for every call that leaves `verify` at its default); TLS verification is
never turned off. Before anything else the script checks that the pin is
what makes the connection work: with the public CA bundle instead, the
handshake must fail.

Usage: tes_client.py BASE_URL CA_PEM TOKEN INPUT_OBJECT_ID
Prints one JSON line with the results; exits non-zero on any failure, with
the reasons on stderr and in the JSON line's `failures`.
"""
import json
import os
import sys
import time

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
# How long a task may take to finish, or to be seen running.
TASK_TIMEOUT_S = 120


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def expect_http_error(call, status, what):
    """Runs `call`, which must raise requests' HTTPError with `status`; returns the response."""
    import requests

    try:
        call()
    except requests.exceptions.HTTPError as e:
        r = e.response
        check(r is not None, f"{what}: HTTPError without a response: {e}")
        check(r.status_code == status, f"{what}: HTTP {r.status_code}, want {status}: {r.text[:500]}")
        return r
    raise Failed(f"{what}: no HTTP error raised, want {status}")


def poll(client, task_id, done, what):
    """Polls GetTask (MINIMAL) until `done(state)`; returns the state."""
    deadline = time.time() + TASK_TIMEOUT_S
    while True:
        state = client.get_task(task_id, view="MINIMAL").state
        if done(state):
            return state
        check(time.time() < deadline, f"{what}: task {task_id} still {state} after {TASK_TIMEOUT_S}s")
        time.sleep(0.2)


def check_pin(base, ca):
    """The pin is what makes TLS work: the public CA bundle must not."""
    import certifi
    import requests

    os.environ["REQUESTS_CA_BUNDLE"] = certifi.where()
    try:
        requests.get(base + "/ga4gh/tes/v1/service-info", timeout=10)
    except requests.exceptions.SSLError:
        pass
    else:
        raise Failed("the gateway's self-signed certificate was accepted without the pin")
    finally:
        os.environ["REQUESTS_CA_BUNDLE"] = ca


def run(base, ca, token, obj, out, failures):
    """Drives the task's life, filling `out` as it goes."""
    os.environ.pop("CURL_CA_BUNDLE", None)
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    check_pin(base, ca)

    import tes

    client = tes.HTTPClient(base, token=token, timeout=30)
    out["py_tes"] = getattr(tes, "__version__", None)

    # Service info is checked on its own: a failure here is recorded and
    # the task's life is still driven, so one run shows every problem.
    try:
        info = client.get_service_info()
        check(info.type and info.type.get("artifact") == "tes", f"service-info type: {info.type!r}")
        check(info.type.get("version", "").startswith("1.1"), f"service-info version: {info.type!r}")
        out["service"] = {"id": info.id, "name": info.name, "type": info.type}
    except Exception as e:
        failures.append(f"GetServiceInfo: {type(e).__name__}: {e}")

    task = tes.Task(
        name="py-tes-judge",
        description="md5sum and cat of one store object, driven by py-tes",
        inputs=[tes.Input(url=f"seqshield://{obj}", path="/data/in/reads.txt")],
        outputs=[
            tes.Output(url="seqshield://tesjudge/md5.txt", path="/data/out/md5.txt"),
            tes.Output(url="seqshield://tesjudge/copy.txt", path="/data/out/copy.txt"),
        ],
        executors=[
            tes.Executor(image="debian:bookworm", command=["md5sum", "/data/in/reads.txt"], stdout="/data/out/md5.txt"),
            tes.Executor(image="debian:bookworm", command=["cat", "/data/in/reads.txt"], stdout="/data/out/copy.txt"),
        ],
        tags={"judge": "py-tes"},
    )
    ok, why = task.is_valid()
    check(ok, f"py-tes thinks the task invalid: {why}")
    task_id = client.create_task(task)
    check(isinstance(task_id, str) and task_id, f"CreateTask id: {task_id!r}")
    out["task"] = task_id

    waited = client.wait(task_id, timeout=TASK_TIMEOUT_S)
    check(waited.state == "COMPLETE", f"task {task_id} ended {waited.state}")
    full = client.get_task(task_id, view="FULL")
    check(full.id == task_id and full.state == "COMPLETE", f"FULL view: {full.id} {full.state}")
    check(full.creation_time is not None, "FULL view has no creation_time")
    check([e.command[0] for e in full.executors or []] == ["md5sum", "cat"], f"executors: {full.executors!r}")
    check(full.tags == {"judge": "py-tes"}, f"tags: {full.tags!r}")
    check(full.logs and len(full.logs) >= 1, f"FULL view has no task log: {full!r}")
    log = full.logs[-1]
    check([e.exit_code for e in log.logs or []] == [0, 0], f"executor exit codes: {log.logs!r}")
    outputs = log.outputs or []
    check(len(outputs) == 2, f"{len(outputs)} output logs, want 2: {outputs!r}")
    for o in outputs:
        check(o.url and o.url.startswith("seqshield://obj_"), f"output url {o.url!r} is not a store object")
        check(isinstance(o.size_bytes, int) and o.size_bytes > 0, f"output size_bytes {o.size_bytes!r}")
    by_path = {o.path: o for o in outputs}
    check(set(by_path) == {"/data/out/md5.txt", "/data/out/copy.txt"}, f"output paths: {sorted(by_path)}")
    out["outputs"] = [{"path": o.path, "url": o.url, "size_bytes": o.size_bytes} for o in outputs]

    listed = client.list_tasks(view="MINIMAL")
    check(any(t.id == task_id for t in listed.tasks or []), f"ListTasks MINIMAL lacks {task_id}")
    check(all(t.executors is None for t in listed.tasks), "ListTasks MINIMAL carries executors")

    # CancelTask on a running task: it ends CANCELED, not COMPLETE.
    sleeper = client.create_task(tes.Task(
        name="py-tes-judge-sleep",
        executors=[tes.Executor(image="debian:bookworm", command=["sleep", "30"])],
    ))
    seen = poll(client, sleeper, lambda s: s == "RUNNING" or s in TERMINAL, "before cancel")
    check(seen == "RUNNING", f"sleep task {sleeper} was {seen} before the cancel")
    started = time.time()
    client.cancel_task(sleeper)
    state = poll(client, sleeper, lambda s: s in TERMINAL, "after cancel")
    check(state == "CANCELED", f"cancelled task {sleeper} ended {state}")
    check(time.time() - started < 25, f"the cancel took {time.time() - started:.0f}s: sleep 30 ran out")
    out["canceled"] = {"id": sleeper, "state": state}

    # Pagination: page_size=1 walks every task once.
    pages, ids, page_token = 0, [], None
    while True:
        page = client.list_tasks(view="MINIMAL", page_size=1, page_token=page_token)
        pages += 1
        check(len(page.tasks or []) <= 1, f"page {pages} has {len(page.tasks)} tasks for page_size=1")
        ids += [t.id for t in page.tasks or []]
        page_token = page.next_page_token
        if not page_token:
            break
        check(pages < 50, "pagination did not end after 50 pages")
    check(len(ids) == len(set(ids)), f"pagination repeated a task: {ids}")
    check({task_id, sleeper} <= set(ids), f"pagination missed a task: {ids}")
    check(pages >= 2, f"pagination took {pages} page(s)")
    out["pagination"] = {"pages": pages, "tasks": ids}

    # A refused task: an HTTP error with 403, in TES error shape.
    bad = tes.Task(executors=[tes.Executor(image="ubuntu:latest", command=["true"])])
    r = expect_http_error(lambda: client.create_task(bad), 403, "image ubuntu:latest")
    body = r.json()
    check(body.get("code") == 403 and body.get("error") == "policy_refused" and body.get("message"),
          f"403 body: {body}")
    # A task that does not exist: 404.
    expect_http_error(lambda: client.get_task("task_0123456789abcdef0123456789abcdef"), 404, "missing task")
    after = client.list_tasks(view="MINIMAL")
    check(len(after.tasks or []) == len(ids), f"the refused task was recorded: {[t.id for t in after.tasks]}")
    out["refused"] = {"status": r.status_code, "error": body.get("error")}


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    base, ca, token, obj = sys.argv[1:5]
    failures = []
    out = {}
    try:
        run(base.rstrip("/"), ca, token, obj, out, failures)
    except Failed as e:
        failures.append(str(e))
    except Exception as e:  # py-tes or requests raised: report it plainly
        failures.append(f"{type(e).__name__}: {e}")
    for f in failures:
        print(f"tes_client: FAILED: {f}", file=sys.stderr)
    out["ok"] = not failures
    out["failures"] = failures
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
