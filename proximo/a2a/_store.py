"""A2A task state in SQLite beside the ledger (``PROXIMO_HOME/a2a-tasks.sqlite``): a task parked in
``input-required`` outlives a restart of the server, so a person's approval given later is not lost."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task

MAX_LIST = 100


class SqliteTaskStore(TaskStore):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, context_id TEXT, state INTEGER, "
                         "updated REAL DEFAULT (julianday('now')), task BLOB NOT NULL)")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def save(self, task: Task, context: ServerCallContext | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO tasks (id, context_id, state, task) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO "
                             "UPDATE SET context_id=excluded.context_id, state=excluded.state, task=excluded.task, "
                             "updated=julianday('now')",
                             (task.id, task.context_id, int(task.status.state), task.SerializeToString()))

    async def get(self, task_id: str, context: ServerCallContext | None = None) -> Task | None:
        with self._lock:
            row = self._db.execute("SELECT task FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return Task.FromString(row[0]) if row else None

    async def list(self, params: ListTasksRequest, context: ServerCallContext | None = None) -> ListTasksResponse:
        query, args = "SELECT task FROM tasks WHERE 1=1", []
        if params.context_id:
            query += " AND context_id = ?"
            args.append(params.context_id)
        if params.status:
            query += " AND state = ?"
            args.append(int(params.status))
        limit = min(params.page_size or MAX_LIST, MAX_LIST)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY updated DESC, id LIMIT ?", (*args, limit)).fetchall()
        tasks = [Task.FromString(r[0]) for r in rows]
        return ListTasksResponse(tasks=tasks, total_size=len(tasks), page_size=len(tasks))

    async def delete(self, task_id: str, context: ServerCallContext | None = None) -> None:
        with self._lock:
            self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
