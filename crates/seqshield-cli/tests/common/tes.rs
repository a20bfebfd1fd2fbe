//! A TES client for the job-service tests: a logged-in user's token, the
//! gateway's pinned certificate, and waiting for tasks.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::site::{browser, client_cmd, login, run_ok, show, Site};
use super::Gateway;

/// TES calls as one user.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub rt: tokio::runtime::Runtime,
}

impl Api {
    /// As the user whose `seqshield login` saved its token under `home`.
    pub fn new(gw: &Gateway, home: &Path) -> Self {
        let port = reqwest::Url::parse(&gw.url).unwrap().port().unwrap();
        let f = home.join("seqshield").join("tokens").join(format!("127.0.0.1_{port}.json"));
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Api { http: browser(gw), url: gw.url.clone(), token: v["access_token"].as_str().unwrap().to_owned(), rt }
    }

    /// The same user against a restarted gateway (new connections).
    pub fn reconnect(self, gw: &Gateway) -> Self {
        Api { http: browser(gw), url: gw.url.clone(), ..self }
    }

    /// Any request; the status and the JSON body (or the text as a string).
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut rb = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
            if let Some(b) = body {
                rb = rb.header("content-type", "application/json").body(b);
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(serde_json::to_vec(body).unwrap()))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None)
    }

    /// CreateTask, which must succeed; the id.
    pub fn submit(&self, task: &Value) -> String {
        let (s, v) = self.post("/ga4gh/tes/v1/tasks", task);
        assert_eq!(s, 200, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// GetTask, FULL view.
    pub fn task(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/ga4gh/tes/v1/tasks/{id}?view=FULL"));
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Polls until `done(state)`, for at most `secs`.
    pub fn wait_for(&self, id: &str, secs: u64, done: impl Fn(&str) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.task(id);
            if done(t["state"].as_str().unwrap()) {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} stuck: {t}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until the task is in a final state.
    pub fn finished(&self, id: &str, secs: u64) -> Value {
        self.wait_for(id, secs, |s| {
            ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"].contains(&s)
        })
    }
}

/// A user's home with a fresh `seqshield login`.
pub fn user(site: &Site, name: &str, secret: &seqshield_auth::totp::TotpSecret) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let out = login(home.path(), &site.gw, name, secret);
    assert!(out.status.success(), "{}", show(&out));
    home
}

/// `seqshield put` as that user; the object id.
pub fn put(home: &Path, gw: &Gateway, file: &Path, name: &str, class: &str) -> String {
    let mut c = client_cmd(home, gw, "put", &gw.cert);
    c.args(["--classification", class, "--name", name]).arg(file).env("XDG_STATE_HOME", home.join("state"));
    let v: Value = serde_json::from_str(&run_ok(&mut c)).unwrap();
    v["object"]["id"].as_str().unwrap().to_owned()
}

/// `seqshield get` as that user.
pub fn get(home: &Path, gw: &Gateway, id: &str, out: &Path) {
    let mut c = client_cmd(home, gw, "get", &gw.cert);
    c.args([id, "-o"]).arg(out).env("XDG_STATE_HOME", home.join("state"));
    run_ok(&mut c);
}
