//! The task table: SQLite in WAL mode with `synchronous=FULL`, written by
//! one thread that commits whatever is queued in one transaction (group
//! commit), so a submission is acknowledged only once it is on disk, yet
//! thousands per second share a few fsyncs.

use std::path::Path;
use std::sync::{mpsc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::tes::TesState;

/// One task row.
#[derive(Clone, Debug)]
pub struct Row {
    /// Insertion order (page tokens).
    pub seq: i64,
    /// The task id.
    pub id: String,
    /// Owner (subject).
    pub owner: String,
    /// Name (for `name_prefix`).
    pub name: String,
    /// State.
    pub state: TesState,
    /// Seconds since the epoch.
    pub created: i64,
    /// The TES task document, FULL view.
    pub doc: String,
    /// The worker's spec (JSON).
    pub spec: String,
    /// What the manifest claims carry about the owner (JSON).
    pub grant: String,
    /// Partition.
    pub partition: String,
    /// `local:PID` or `slurm:JOBID`, once started.
    pub executor: Option<String>,
}

/// A change.
pub enum Op {
    /// A new task.
    Insert(Box<Row>),
    /// New state and document (and executor reference).
    Update {
        /// Task id.
        id: String,
        /// State.
        state: TesState,
        /// Document.
        doc: String,
        /// Executor reference, when it changes.
        executor: Option<String>,
    },
}

type Job = (Op, oneshot::Sender<Result<(), String>>);

/// The database: a writer thread and a reader connection.
pub struct Db {
    tx: Mutex<mpsc::Sender<Job>>,
    reader: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  created INTEGER NOT NULL,
  doc TEXT NOT NULL,
  spec TEXT NOT NULL,
  grant TEXT NOT NULL,
  partition TEXT NOT NULL,
  executor TEXT
);
CREATE INDEX IF NOT EXISTS tasks_owner ON tasks(owner, seq);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
";

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "secure_delete", "ON")?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(c)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let state: String = r.get(4)?;
    Ok(Row {
        seq: r.get(0)?,
        id: r.get(1)?,
        owner: r.get(2)?,
        name: r.get(3)?,
        state: TesState::parse(&state).unwrap_or(TesState::Unknown),
        created: r.get(5)?,
        doc: r.get(6)?,
        spec: r.get(7)?,
        grant: r.get(8)?,
        partition: r.get(9)?,
        executor: r.get(10)?,
    })
}

const COLUMNS: &str = "seq, id, owner, name, state, created, doc, spec, grant, partition, executor";

impl Db {
    /// Opens (creating) the database and starts its writer.
    pub fn open(path: &Path) -> Result<Self, String> {
        let writer = open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writer.execute_batch(SCHEMA).map_err(|e| format!("{}: {e}", path.display()))?;
        let reader = open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("jobs-db".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| format!("cannot start the task database writer: {e}"))?;
        Ok(Self { tx: Mutex::new(tx), reader: Mutex::new(reader) })
    }

    /// Applies `op`; returns once it is committed.
    pub async fn write(&self, op: Op) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((op, done))
            .map_err(|_| "the task database writer stopped".to_owned())?;
        wait.await.map_err(|_| "the task database writer stopped".to_owned())?
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, String> {
        let c = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&c).map_err(|e| format!("task database: {e}"))
    }

    /// One task.
    pub fn get(&self, id: &str) -> Result<Option<Row>, String> {
        self.read(|c| c.query_row(&format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"), params![id], row).optional())
    }

    /// Tasks after `after` (seq, descending order: newest first, so
    /// `after` is the last seq of the previous page), of `owner` unless
    /// `None` (admins), at most `limit`.
    pub fn page(&self, owner: Option<&str>, before: Option<i64>, limit: usize) -> Result<Vec<Row>, String> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut out = Vec::new();
            match owner {
                Some(o) => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM tasks WHERE owner = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                    ))?;
                    for r in st.query_map(params![o, before, limit], row)? {
                        out.push(r?);
                    }
                }
                None => {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM tasks WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
                    ))?;
                    for r in st.query_map(params![before, limit], row)? {
                        out.push(r?);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Every task not in a terminal state (restart, reconciliation).
    pub fn active(&self) -> Result<Vec<Row>, String> {
        let terminal: Vec<&str> =
            crate::tes::TesState::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.as_str()).collect();
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM tasks WHERE state NOT IN ('{}') ORDER BY seq",
                terminal.join("','")
            ))?;
            let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

fn apply(tx: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Insert(r) => {
            tx.prepare_cached(
                "INSERT INTO tasks(id, owner, name, state, created, doc, spec, grant, partition, executor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                r.id,
                r.owner,
                r.name,
                r.state.as_str(),
                r.created,
                r.doc,
                r.spec,
                r.grant,
                r.partition,
                r.executor
            ])?;
        }
        Op::Update { id, state, doc, executor } => {
            let n =
                match executor {
                    Some(e) => tx
                        .prepare_cached("UPDATE tasks SET state = ?2, doc = ?3, executor = ?4 WHERE id = ?1")?
                        .execute(params![id, state.as_str(), doc, e])?,
                    None => tx
                        .prepare_cached("UPDATE tasks SET state = ?2, doc = ?3 WHERE id = ?1")?
                        .execute(params![id, state.as_str(), doc])?,
                };
            if n != 1 {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
        }
    }
    Ok(())
}

fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // Each op in its own savepoint: one failing op fails alone.
        let mut results: Vec<Result<(), String>> = Vec::with_capacity(batch.len());
        let committed = (|| -> rusqlite::Result<()> {
            let mut tx = conn.transaction()?;
            for (op, _) in &batch {
                let sp = tx.savepoint()?;
                match apply(&sp, op) {
                    Ok(()) => {
                        sp.commit()?;
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(format!("task database: {e}"))),
                }
            }
            tx.commit()
        })();
        for (i, (_, done)) in batch.into_iter().enumerate() {
            let r = match &committed {
                Ok(()) => results.get(i).cloned().unwrap_or_else(|| Err("task database: not applied".into())),
                Err(e) => Err(format!("task database: {e}")),
            };
            let _ = done.send(r);
        }
    }
}
