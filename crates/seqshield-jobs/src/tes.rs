//! The GA4GH TES 1.1 task model: the documents clients send and receive,
//! the three views, and the checks a submitted task passes before anything
//! is stored.
//!
//! Field names and shapes follow the TES 1.1 OpenAPI document. What the
//! server fills in (`id`, `state`, `logs`, `creation_time`) is ignored on
//! submission. seqshield records its own facts (placement and its reasons,
//! the Slurm job) in `logs[0].metadata`, as TES intends for
//! implementation-specific logging, so unmodified clients read the task.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// TES 1.1 task states (`tesState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TesState {
    /// Unknown.
    Unknown,
    /// Queued: accepted, waiting for resources.
    Queued,
    /// Initializing: the worker is staging inputs.
    Initializing,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Complete (success).
    Complete,
    /// An executor failed.
    ExecutorError,
    /// The system failed.
    SystemError,
    /// Canceled.
    Canceled,
    /// Being canceled.
    Canceling,
    /// Preempted by the scheduler.
    Preempted,
}

impl TesState {
    /// Every state, in the order of the specification.
    pub const ALL: [TesState; 11] = [
        Self::Unknown,
        Self::Queued,
        Self::Initializing,
        Self::Running,
        Self::Paused,
        Self::Complete,
        Self::ExecutorError,
        Self::SystemError,
        Self::Canceled,
        Self::Canceling,
        Self::Preempted,
    ];

    /// Whether no further transition can happen.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::ExecutorError | Self::SystemError | Self::Canceled | Self::Preempted)
    }

    /// The wire name (`QUEUED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Queued => "QUEUED",
            Self::Initializing => "INITIALIZING",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Complete => "COMPLETE",
            Self::ExecutorError => "EXECUTOR_ERROR",
            Self::SystemError => "SYSTEM_ERROR",
            Self::Canceled => "CANCELED",
            Self::Canceling => "CANCELING",
            Self::Preempted => "PREEMPTED",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// `tesFileType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileType {
    /// A file.
    #[default]
    File,
    /// A directory.
    Directory,
}

/// `tesInput`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the data is: `seqshield://obj_…`, `drs://HOST/obj_…` or a
    /// bare DRS id `obj_…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Absolute path inside the executors' file system.
    pub path: String,
    /// FILE or DIRECTORY.
    #[serde(default, rename = "type")]
    pub kind: FileType,
    /// A literal content instead of a URL (UTF-8, at most [`MAX_CONTENT_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// TES 1.1: whether the input may be streamed (a hint; inputs are
    /// always staged whole here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamable: Option<bool>,
}

/// `tesOutput`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the result goes: `seqshield://DATASET/NAME`, a new object.
    pub url: String,
    /// Absolute path inside the executors' file system.
    pub path: String,
    /// TES 1.1: prefix to strip for DIRECTORY/wildcard outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// FILE or DIRECTORY.
    #[serde(default, rename = "type")]
    pub kind: FileType,
}

/// `tesResources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<i64>,
    /// Whether a preemptible node is acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptible: Option<bool>,
    /// Memory in GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_gb: Option<f64>,
    /// Disk in GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<f64>,
    /// Zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    /// TES 1.1: backend-specific parameters (see [`BACKEND_PARAMETERS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters: Option<BTreeMap<String, String>>,
    /// TES 1.1: fail on a backend parameter the backend does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_parameters_strict: Option<bool>,
}

/// `tesExecutor`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    /// An approved tool environment (see `policy/images.toml`).
    pub image: String,
    /// argv.
    pub command: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// File piped to stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// File stdout is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// File stderr is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// TES 1.1: go on with the next executor even if this one fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_error: Option<bool>,
}

/// `tesExecutorLog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorLog {
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The tail of stdout, filtered (see `crate::logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// The tail of stderr, filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Exit code (128 + N for a signal).
    pub exit_code: i32,
}

/// `tesOutputFileLog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFileLog {
    /// The stored object: `seqshield://obj_…`.
    pub url: String,
    /// The path inside the executors' file system.
    pub path: String,
    /// Size in bytes, as a string (as TES has it).
    pub size_bytes: String,
}

/// `tesTaskLog`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLog {
    /// One per executor run.
    #[serde(default)]
    pub logs: Vec<ExecutorLog>,
    /// Implementation facts: placement, reasons, Slurm job id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Outputs stored.
    #[serde(default)]
    pub outputs: Vec<OutputFileLog>,
    /// System messages (staging, sandbox, scheduler).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_logs: Vec<String>,
}

/// `tesTask`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server-maintained state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TesState>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Input>>,
    /// Outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<Output>>,
    /// Resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Executors, run in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executors: Vec<Executor>,
    /// Directories shared by the executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<String>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Server-maintained logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<TaskLog>>,
    /// Server-assigned creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
}

/// The `view` of GetTask and ListTasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum View {
    /// id and state only (the default).
    #[default]
    Minimal,
    /// Everything but executor stdout/stderr, input content and system logs.
    Basic,
    /// Everything.
    Full,
}

impl View {
    /// Parses a `view` query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MINIMAL" => Some(Self::Minimal),
            "BASIC" => Some(Self::Basic),
            "FULL" => Some(Self::Full),
            _ => None,
        }
    }
}

impl Task {
    /// The task as `view` shows it.
    pub fn view(&self, view: View) -> Task {
        match view {
            View::Minimal => Task { id: self.id.clone(), state: self.state, ..Task::default() },
            View::Full => self.clone(),
            View::Basic => {
                let mut t = self.clone();
                for i in t.inputs.iter_mut().flatten() {
                    i.content = None;
                }
                for l in t.logs.iter_mut().flatten() {
                    l.system_logs.clear();
                    for e in &mut l.logs {
                        e.stdout = None;
                        e.stderr = None;
                    }
                }
                t
            }
        }
    }
}

// ---- limits and checks ------------------------------------------------------

/// Largest task document accepted, in bytes.
pub const MAX_TASK_BYTES: usize = 1024 * 1024;
/// Largest literal input content (TES asks for at least 128 KiB).
pub const MAX_CONTENT_BYTES: usize = 128 * 1024;
/// Most executors in one task.
pub const MAX_EXECUTORS: usize = 32;
/// Most inputs, outputs or volumes in one task.
pub const MAX_FILES: usize = 256;
/// Longest single argument, path, name or tag, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Most arguments of one command.
pub const MAX_ARGS: usize = 1024;
/// Most tags or environment variables.
pub const MAX_ENTRIES: usize = 64;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;

/// Backend parameters this service understands (TES 1.1
/// `resources.backend_parameters`).
pub const BACKEND_PARAMETERS: [&str; 2] = [PARAM_PARTITION, PARAM_RUNTIME];
/// Ask for a partition (`onprem` or `cloud`); honoured where placement
/// policy permits an override.
pub const PARAM_PARTITION: &str = "seqshield.partition";
/// Estimated runtime in seconds (placement and the Slurm time limit).
pub const PARAM_RUNTIME: &str = "seqshield.runtime_secs";

/// Paths a task may not place files under: the tool environment itself.
const SYSTEM_DIRS: [&str; 12] =
    ["usr", "bin", "sbin", "lib", "lib64", "etc", "proc", "dev", "sys", "run", "boot", "var"];

/// A task that does not pass the checks: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Invalid {
    /// The JSON path of the field (`executors[0].command`).
    pub field: String,
    /// Why.
    pub why: String,
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), why: why.into() }
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), Invalid> {
    if s.len() > max {
        return Err(invalid(field, format!("longer than {max} bytes")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

fn check_arg(field: &str, s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_FIELD_BYTES {
        return Err(invalid(field, format!("longer than {MAX_FIELD_BYTES} bytes")));
    }
    if s.contains('\0') {
        return Err(invalid(field, "contains a NUL byte"));
    }
    Ok(())
}

/// Checks a path inside the executors' file system: absolute, normal (no
/// `.`, `..` or `//`), at least two components, printable, and not under the
/// tool environment's own directories (`/usr`, `/etc`, `/proc`, …).
pub fn check_container_path(field: &str, p: &str) -> Result<(), Invalid> {
    check_arg(field, p)?;
    if p.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    if !p.starts_with('/') {
        return Err(invalid(field, format!("{p:?} must be an absolute path")));
    }
    if p.contains("//") || p.ends_with('/') && p.len() > 1 {
        return Err(invalid(field, format!("{p:?} is not a normal path")));
    }
    let comps: Vec<Component<'_>> = Path::new(p).components().collect();
    if comps.iter().any(|c| !matches!(c, Component::RootDir | Component::Normal(_))) || p.contains("/./") {
        return Err(invalid(field, format!("{p:?} must not contain . or ..")));
    }
    let normal: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if normal.len() < 2 {
        return Err(invalid(
            field,
            format!("{p:?} must be inside a directory, e.g. /data/{}", normal.first().unwrap_or(&"file")),
        ));
    }
    if SYSTEM_DIRS.contains(&normal[0]) || normal[0] == "tmp" {
        return Err(invalid(field, format!("{p:?} is inside /{}, which belongs to the tool environment", normal[0])));
    }
    Ok(())
}

/// The top directory of a checked container path (`/data/x/y` → `data`).
pub fn top_dir(p: &str) -> &str {
    p.trim_start_matches('/').split('/').next().unwrap_or("")
}

impl Task {
    /// Checks a submitted task: shapes, sizes, paths and backend parameters.
    /// Images, commands, object URLs and permissions are checked by the job
    /// service against its policies and the store.
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(n) = &self.name {
            check_text("name", n, MAX_FIELD_BYTES)?;
        }
        if let Some(d) = &self.description {
            check_text("description", d, MAX_DESCRIPTION_BYTES)?;
        }
        if self.executors.is_empty() {
            return Err(invalid("executors", "at least one executor is required"));
        }
        if self.executors.len() > MAX_EXECUTORS {
            return Err(invalid("executors", format!("at most {MAX_EXECUTORS} executors")));
        }
        for (i, e) in self.executors.iter().enumerate() {
            let f = |name: &str| format!("executors[{i}].{name}");
            if e.image.is_empty() {
                return Err(invalid(f("image"), "is required"));
            }
            check_text(&f("image"), &e.image, 256)?;
            if e.command.is_empty() || e.command[0].is_empty() {
                return Err(invalid(f("command"), "must name a program"));
            }
            if e.command.len() > MAX_ARGS {
                return Err(invalid(f("command"), format!("at most {MAX_ARGS} arguments")));
            }
            for (j, a) in e.command.iter().enumerate() {
                check_arg(&format!("executors[{i}].command[{j}]"), a)?;
            }
            for (name, p) in
                [("workdir", &e.workdir), ("stdin", &e.stdin), ("stdout", &e.stdout), ("stderr", &e.stderr)]
            {
                if let Some(p) = p {
                    check_container_path(&f(name), p)?;
                }
            }
            if let Some(env) = &e.env {
                if env.len() > MAX_ENTRIES {
                    return Err(invalid(f("env"), format!("at most {MAX_ENTRIES} variables")));
                }
                for (k, v) in env {
                    let ok = !k.is_empty()
                        && k.len() <= 256
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !k.as_bytes()[0].is_ascii_digit();
                    if !ok {
                        return Err(invalid(f("env"), format!("{k:?} is not a valid variable name")));
                    }
                    check_arg(&format!("executors[{i}].env.{k}"), v)?;
                }
            }
        }
        let inputs = self.inputs.as_deref().unwrap_or_default();
        let outputs = self.outputs.as_deref().unwrap_or_default();
        let volumes = self.volumes.as_deref().unwrap_or_default();
        for (what, n) in [("inputs", inputs.len()), ("outputs", outputs.len()), ("volumes", volumes.len())] {
            if n > MAX_FILES {
                return Err(invalid(what, format!("at most {MAX_FILES}")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, input) in inputs.iter().enumerate() {
            let f = |name: &str| format!("inputs[{i}].{name}");
            check_container_path(&f("path"), &input.path)?;
            if !seen.insert(input.path.as_str()) {
                return Err(invalid(f("path"), format!("{:?} is given twice", input.path)));
            }
            if input.kind == FileType::Directory {
                return Err(invalid(f("type"), "DIRECTORY inputs are not supported: list each file as its own input"));
            }
            match (&input.url, &input.content) {
                (_, Some(c)) if c.len() > MAX_CONTENT_BYTES => {
                    return Err(invalid(f("content"), format!("longer than {MAX_CONTENT_BYTES} bytes")))
                }
                (_, Some(_)) => {}
                (None, None) => return Err(invalid(f("url"), "url or content is required")),
                (Some(u), None) => check_arg(&f("url"), u)?,
            }
        }
        for (i, o) in outputs.iter().enumerate() {
            let f = |name: &str| format!("outputs[{i}].{name}");
            check_container_path(&f("path"), &o.path)?;
            check_arg(&f("url"), &o.url)?;
            if o.kind == FileType::Directory || o.path_prefix.is_some() {
                return Err(invalid(f("type"), "DIRECTORY and wildcard outputs are not supported: list each file"));
            }
        }
        for (i, v) in volumes.iter().enumerate() {
            check_container_path(&format!("volumes[{i}]"), v)?;
        }
        if let Some(tags) = &self.tags {
            if tags.len() > MAX_ENTRIES {
                return Err(invalid("tags", format!("at most {MAX_ENTRIES} tags")));
            }
            for (k, v) in tags {
                check_text("tags", k, 256)?;
                check_text(&format!("tags.{k}"), v, MAX_FIELD_BYTES)?;
            }
        }
        if let Some(r) = &self.resources {
            if r.cpu_cores.is_some_and(|c| c < 1) {
                return Err(invalid("resources.cpu_cores", "must be at least 1"));
            }
            for (name, v) in [("ram_gb", r.ram_gb), ("disk_gb", r.disk_gb)] {
                if v.is_some_and(|g| !g.is_finite() || g < 0.0) {
                    return Err(invalid(format!("resources.{name}"), "must be a non-negative number"));
                }
            }
            if let Some(params) = &r.backend_parameters {
                for (k, v) in params {
                    if !BACKEND_PARAMETERS.contains(&k.as_str()) {
                        if r.backend_parameters_strict == Some(true) {
                            return Err(invalid(
                                format!("resources.backend_parameters.{k}"),
                                format!("unknown to this backend (known: {})", BACKEND_PARAMETERS.join(", ")),
                            ));
                        }
                        continue;
                    }
                    check_arg(&format!("resources.backend_parameters.{k}"), v)?;
                }
            }
        }
        Ok(())
    }
}

/// Parses a submitted task. `strict`: a member TES does not define is an
/// error naming it (otherwise it is ignored).
pub fn parse_task(body: &[u8], strict: bool) -> Result<Task, Invalid> {
    if body.len() > MAX_TASK_BYTES {
        return Err(invalid("body", format!("larger than {MAX_TASK_BYTES} bytes")));
    }
    let mut unknown = Vec::new();
    let de = &mut serde_json::Deserializer::from_slice(body);
    let task: Task = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(|e| invalid("body", format!("not a TES task: {e}")))?;
    if strict {
        if let Some(f) = unknown.first() {
            return Err(invalid(f.clone(), "is not a TES 1.1 field (strict mode)"));
        }
    }
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({"executors": [{"image": "debian:bookworm", "command": ["echo", "hi"]}]})
    }

    #[test]
    fn strict_mode_names_the_unknown_field() {
        let mut v = minimal();
        v["executors"][0]["imagee"] = "x".into();
        let body = serde_json::to_vec(&v).unwrap();
        let e = parse_task(&body, true).unwrap_err();
        assert_eq!(e.field, "executors.0.imagee");
        assert!(parse_task(&body, false).is_ok());
    }

    #[test]
    fn views_hide_what_they_should() {
        let mut t = parse_task(&serde_json::to_vec(&minimal()).unwrap(), true).unwrap();
        t.id = Some("task_1".into());
        t.state = Some(TesState::Running);
        t.inputs = Some(vec![Input { path: "/data/a".into(), content: Some("secret".into()), ..Input::default() }]);
        t.logs = Some(vec![TaskLog {
            logs: vec![ExecutorLog { stdout: Some("out".into()), exit_code: 0, ..ExecutorLog::default() }],
            system_logs: vec!["sys".into()],
            ..TaskLog::default()
        }]);
        let m = serde_json::to_value(t.view(View::Minimal)).unwrap();
        assert_eq!(m, serde_json::json!({"id": "task_1", "state": "RUNNING"}));
        let b = t.view(View::Basic);
        assert!(b.inputs.as_ref().unwrap()[0].content.is_none());
        assert!(b.logs.as_ref().unwrap()[0].logs[0].stdout.is_none());
        assert!(b.logs.as_ref().unwrap()[0].system_logs.is_empty());
        assert_eq!(t.view(View::Full), t);
    }

    #[test]
    fn container_paths_are_checked() {
        for bad in [
            "data/x",
            "/x",
            "/data/../etc/passwd",
            "/data//x",
            "/data/./x",
            "/usr/bin/x",
            "/etc/x",
            "/tmp/x",
            "/data/x/",
            "/data/\nx",
        ] {
            assert!(check_container_path("p", bad).is_err(), "{bad:?}");
        }
        for good in ["/data/x", "/work/run 1/out.vcf", "/inputs/a.b.c"] {
            check_container_path("p", good).unwrap();
        }
    }

    #[test]
    fn checks_give_the_field() {
        let mut t: Task = serde_json::from_value(minimal()).unwrap();
        t.executors[0].command.clear();
        assert_eq!(t.check().unwrap_err().field, "executors[0].command");
        let mut t: Task = serde_json::from_value(minimal()).unwrap();
        t.inputs = Some(vec![Input { path: "/data/a".into(), ..Input::default() }]);
        assert_eq!(t.check().unwrap_err().field, "inputs[0].url");
        let mut t: Task = serde_json::from_value(minimal()).unwrap();
        t.resources = Some(Resources {
            backend_parameters: Some([("gpu".to_owned(), "1".to_owned())].into()),
            backend_parameters_strict: Some(true),
            ..Resources::default()
        });
        assert_eq!(t.check().unwrap_err().field, "resources.backend_parameters.gpu");
        t.resources.as_mut().unwrap().backend_parameters_strict = None;
        t.check().unwrap();
    }

    #[test]
    fn every_state_round_trips() {
        for s in TesState::ALL {
            assert_eq!(TesState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
