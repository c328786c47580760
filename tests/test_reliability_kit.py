"""RELIABILITY_SEED replays the random choices of the reliability tests exactly: each thread draws from its
own Random, derived from the seed and its name, the same in every process (whatever PYTHONHASHSEED)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Two threads draw at the same time, interleaved differently in each run (sleeps from the OS's randomness).
DRAWS = """
import json, random, threading, time
import reliability_kit as kit
out = {}
def draw(name):
    mine, jitter = kit.rng(name), random.SystemRandom()
    out[name] = []
    for _ in range(50):
        out[name].append(mine.choice(("alice", "bob", "carol")) + f"{mine.uniform(0.3, 1.2):.6f}")
        time.sleep(jitter.uniform(0, 0.001))
threads = [threading.Thread(target=draw, args=(n,)) for n in ("R2", "R2/storm")]
[t.start() for t in threads]; [t.join() for t in threads]
print("DRAWS" + json.dumps(out))
"""


def draws(seed: str, hash_seed: str) -> dict:
    env = dict(os.environ, RELIABILITY_SEED=seed, PYTHONHASHSEED=hash_seed,
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "plugins" / "opg_incident"), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", DRAWS], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out.split("DRAWS", 1)[1])


def test_a_seed_replays_every_threads_draws_and_names_keep_them_apart():
    first, again, other = draws("4242", "1"), draws("4242", "2"), draws("4243", "1")
    assert first == again  # same seed, another process, another interleaving: the same choices
    assert first["R2"] != first["R2/storm"]  # each thread its own stream
    assert first["R2"] != other["R2"] and first["R2/storm"] != other["R2/storm"]
