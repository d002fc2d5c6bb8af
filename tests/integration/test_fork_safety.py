"""A forked child (Huey's process workers) must not close the connections it inherited.

The child starts with copies of the parent's connection objects, one per parent thread,
all on sockets it shares with the parent. When the child lets them go (other threads'
thread-locals are dropped at fork, its own garbage collector runs), closing them would
send COM_QUIT or shut the shared socket down under the parent's feet: the parent's next
query (a notify on the web thread) fails with a broken pipe.
"""

from __future__ import annotations

import gc
import os
import threading

import pytest

from sidecar.store import Database

pytestmark = pytest.mark.db


def test_a_child_that_drops_inherited_connections_leaves_the_parents_working(migrated_db):
    db = Database(migrated_db)
    ready, go, answers = threading.Event(), threading.Event(), []

    def other_thread() -> None:  # a parent thread the child will not have
        with db.transaction() as cur:
            cur.execute("SELECT 1 AS one")
        ready.set()
        go.wait(60)
        with db.transaction() as cur:
            cur.execute("SELECT 2 AS two")
            answers.append(cur.fetchone()["two"])

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert ready.wait(60)
    with db.transaction() as cur:  # the forking thread's own connection
        cur.execute("SELECT 1 AS one")
    pid = os.fork()
    if pid == 0:  # the child: its own connection works, then it drops everything it has
        code = 1
        try:
            with db.transaction() as cur:
                cur.execute("SELECT 3 AS three")
                code = 0 if cur.fetchone()["three"] == 3 else 1
            db.close()
            gc.collect()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child could not use the database"
    go.set()
    worker.join(60)
    assert answers == [2], "the parent's other thread lost its connection to the child"
    with db.transaction() as cur:
        cur.execute("SELECT 4 AS four")
        assert cur.fetchone()["four"] == 4
    db.close()
