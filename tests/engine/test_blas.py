"""The BLAS thread limit: set once per process, whichever thread asks first.

The limit belongs to the process, so each case runs in a fresh interpreter whose
threadpoolctl is a stand-in: a ThreadpoolController whose limit() takes a while and
records its calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SLOW_THREADPOOLCTL = """
import sys, time, types
limits = []
class ThreadpoolController:
    def limit(self, **kwargs):
        time.sleep(0.05)  # room for another thread to come in meanwhile
        limits.append(kwargs)
        return object()
sys.modules["threadpoolctl"] = types.ModuleType("threadpoolctl")
sys.modules["threadpoolctl"].ThreadpoolController = ThreadpoolController
"""


def run_fresh(case: str, threadpoolctl: str = SLOW_THREADPOOLCTL) -> Any:
    """Run `case` after `threadpoolctl` in a new interpreter; what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", f"{threadpoolctl}\n{case}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_two_threads_set_the_limit_once() -> None:
    """Two threads entering together set one limit, and neither restores it."""
    result = run_fresh(
        """
import json, threading
import numpy as np
from baby_monitor_engine import blas
barrier = threading.Barrier(2)
done = []
def work():
    barrier.wait()
    with blas.single_threaded():
        done.append(float((np.ones((4, 4)) @ np.ones((4, 4)))[0, 0]))
threads = [threading.Thread(target=work) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
together = list(limits)
with blas.single_threaded():
    pass
print(json.dumps({"done": done, "together": together, "after": len(limits)}))
"""
    )
    assert result == {
        "done": [4.0, 4.0],
        "together": [{"limits": 1, "user_api": "blas"}],
        "after": 1,
    }


def test_limit_threads_says_whether_a_limit_is_set() -> None:
    """True once the limit is set, set only once; False without threadpoolctl."""
    case = """
import json
from baby_monitor_engine import blas
said = [blas.limit_threads(), blas.limit_threads()]
print(json.dumps({"said": said, "limits": len(limits)}))
"""
    assert run_fresh(case) == {"said": [True, True], "limits": 1}

    without = 'limits = []\nimport sys; sys.modules["threadpoolctl"] = None\n'
    assert run_fresh(case, without) == {"said": [False, False], "limits": 0}
