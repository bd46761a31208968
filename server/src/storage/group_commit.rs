//! Group commit for SQLite (issue 14): one writer thread runs the
//! transactions of concurrent requests together, each in a SAVEPOINT of one
//! BEGIN IMMEDIATE … COMMIT, so N sign-ins cost one fsync instead of N.
//! Every request is answered only after its batch's COMMIT returned, so
//! what was answered is durable (`synchronous = FULL`); a job that fails
//! or asks to be undone is rolled back to its savepoint without touching
//! the others.
//!
//! The writer connection stays shared (behind its mutex) with the store's
//! other writes, which run their own transactions between batches.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::StorageError;

/// At most this many jobs share one COMMIT: bounds the time the writer is
/// held and the latency the first job of a batch waits for the last.
const MAX_BATCH: usize = 64;

/// What a job asks for its own changes.
pub enum Step<T> {
    /// Keep them (committed with the batch).
    Keep(T),
    /// Roll them back (a refusal such as a used challenge), answer `T`.
    Undo(T),
}

/// Called once the batch's fate is known, with the COMMIT's error if any.
type Finish = Box<dyn FnOnce(Option<&StorageError>) + Send>;
/// Runs a job on the connection (or, if the batch could not begin, is
/// handed the error) and says whether to keep its changes.
type Job = Box<dyn FnOnce(Result<&Connection, &StorageError>) -> (bool, Finish) + Send>;

pub struct GroupCommit {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts the writer thread over `writer` (the store's writer connection).
    pub fn start(writer: Arc<Mutex<Connection>>) -> Result<Self, StorageError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-group-commit".into())
            .spawn(move || writer_loop(&writer, &rx))
            .map_err(|e| StorageError::Task(e.to_string()))?;
        Ok(GroupCommit {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `f` in the next batch; answers once that batch committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<Step<T>, StorageError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(c) => catch_unwind(AssertUnwindSafe(|| f(c)))
                    .unwrap_or_else(|_| Err(StorageError::Task("a batched job panicked".into()))),
                Err(e) => Err(StorageError::Database(e.to_string())),
            };
            let keep = matches!(result, Ok(Step::Keep(_)));
            let finish: Finish = Box::new(move |commit: Option<&StorageError>| {
                let answer = match (result, commit) {
                    // Its changes were lost with the batch.
                    (Ok(Step::Keep(_)), Some(e)) => Err(StorageError::Database(e.to_string())),
                    (Ok(Step::Keep(v) | Step::Undo(v)), _) => Ok(v),
                    (Err(e), _) => Err(e),
                };
                // The caller may have gone (its request was dropped): the
                // outcome stands all the same.
                let _ = tx.send(answer);
            });
            (keep, finish)
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StorageError::Task("the group-commit writer stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Task("the group-commit writer dropped a job".into()))?
    }
}

fn writer_loop(writer: &Mutex<Connection>, rx: &mpsc::Receiver<Job>) {
    // Ends when the store (and with it every sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let conn = writer.lock().unwrap_or_else(|p| p.into_inner());
        let (finishes, commit) = run_batch(&conn, batch);
        drop(conn);
        for finish in finishes {
            finish(commit.as_ref());
        }
    }
}

/// One BEGIN … COMMIT over the batch: the jobs' finishers, and the error
/// that lost the batch, if one did.
fn run_batch(conn: &Connection, batch: Vec<Job>) -> (Vec<Finish>, Option<StorageError>) {
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let e = StorageError::from(e);
        for job in batch {
            finishes.push(job(Err(&e)).1);
        }
        return (finishes, Some(e));
    }
    let mut failed: Option<StorageError> = None;
    for job in batch {
        if failed.is_none() {
            if let Err(e) = exec(conn, "SAVEPOINT job") {
                failed = Some(e.into());
            }
        }
        if let Some(e) = &failed {
            // The batch is lost already: the job is told so, not run.
            finishes.push(job(Err(e)).1);
            continue;
        }
        let (keep, finish) = job(Ok(conn));
        finishes.push(finish);
        let end = if keep {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = end {
            failed = Some(e.into());
        }
    }
    let commit = match failed {
        Some(e) => Err(e),
        None => exec(conn, "COMMIT").map_err(StorageError::from),
    };
    match commit {
        Ok(()) => (finishes, None),
        Err(e) => {
            // Nothing of the batch is kept; the connection is left clean.
            let _ = conn.execute_batch("ROLLBACK");
            (finishes, Some(e))
        }
    }
}

/// One of the batch's own statements, parsed once per connection: they run
/// a few times per sign-in.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    fn store() -> (tempfile::TempDir, Arc<Mutex<Connection>>, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("g.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE t (k TEXT PRIMARY KEY);",
        )
        .unwrap();
        let writer = Arc::new(Mutex::new(conn));
        let group = GroupCommit::start(writer.clone()).unwrap();
        (dir, writer, group)
    }

    fn insert(k: &'static str) -> impl FnOnce(&Connection) -> Result<Step<()>, StorageError> {
        move |c| {
            c.execute("INSERT INTO t (k) VALUES (?1)", params![k])?;
            Ok(Step::Keep(()))
        }
    }

    fn keys(writer: &Mutex<Connection>) -> Vec<String> {
        let c = writer.lock().unwrap();
        let mut s = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    // The writer is held across awaits on purpose: it makes the batch.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_leaves_the_others_of_its_batch_committed() {
        let (_dir, writer, group) = store();
        let group = Arc::new(group);
        // Hold the writer so the jobs below queue up and run as one batch.
        let held = writer.lock().unwrap();
        let (a, dup, undone, b) = {
            let g = group.clone();
            let a = tokio::spawn(async move { g.run(insert("a")).await });
            let g = group.clone();
            // Inserts, then fails on a duplicate key: its first row must go too.
            let dup = tokio::spawn(async move {
                g.run(|c| {
                    c.execute("INSERT INTO t (k) VALUES ('dup-1')", [])?;
                    c.execute("INSERT INTO t (k) VALUES ('dup-1')", [])?;
                    Ok(Step::Keep(()))
                })
                .await
            });
            let g = group.clone();
            let undone = tokio::spawn(async move {
                g.run(|c| {
                    c.execute("INSERT INTO t (k) VALUES ('undone')", [])?;
                    Ok(Step::Undo(7))
                })
                .await
            });
            let g = group.clone();
            let b = tokio::spawn(async move { g.run(insert("b")).await });
            (a, dup, undone, b)
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !a.is_finished() && !b.is_finished(),
            "answered before commit"
        );
        drop(held);
        assert!(a.await.unwrap().is_ok());
        assert!(matches!(dup.await.unwrap(), Err(StorageError::Conflict)));
        assert_eq!(undone.await.unwrap().unwrap(), 7);
        assert!(b.await.unwrap().is_ok());
        assert_eq!(keys(&writer), vec!["a".to_owned(), "b".to_owned()]);
        // The connection is usable afterwards, inside and outside batches.
        group.run(insert("c")).await.unwrap();
        writer
            .lock()
            .unwrap()
            .execute("INSERT INTO t (k) VALUES ('d')", [])
            .unwrap();
        assert_eq!(keys(&writer), vec!["a", "b", "c", "d"]);
    }

    #[tokio::test]
    async fn a_panicking_job_is_answered_and_the_writer_lives_on() {
        let (_dir, writer, group) = store();
        let r: Result<(), _> = group
            .run(|c| {
                c.execute("INSERT INTO t (k) VALUES ('p')", [])?;
                panic!("test panic");
            })
            .await;
        assert!(matches!(r, Err(StorageError::Task(_))));
        group.run(insert("after")).await.unwrap();
        assert_eq!(keys(&writer), vec!["after"]);
    }

    #[tokio::test]
    async fn an_error_at_commit_answers_every_kept_job_with_it() {
        let (_dir, writer, group) = store();
        // A deferred foreign key fails only at COMMIT.
        writer
            .lock()
            .unwrap()
            .execute_batch(
                "PRAGMA foreign_keys = ON;
                 CREATE TABLE p (id INTEGER PRIMARY KEY);
                 CREATE TABLE ch (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .unwrap();
        let r = group
            .run(|c| {
                c.execute("INSERT INTO t (k) VALUES ('lost')", [])?;
                c.execute("INSERT INTO ch (p) VALUES (42)", [])?;
                Ok(Step::Keep(()))
            })
            .await;
        assert!(r.is_err(), "{r:?}");
        assert!(keys(&writer).is_empty());
        group.run(insert("next")).await.unwrap();
        assert_eq!(keys(&writer), vec!["next"]);
    }
}
