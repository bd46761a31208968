"""Fixtures: the generated bindings on sys.path, and a real devicetrust
server (the workspace's binary) on 127.0.0.1 with an outbox file."""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bindings" / "generated" / "python"))

ADMIN_TOKEN = "python-tests-admin-token-0123456789abcdef"
RP_ID = "https://rp.python.test"
PASSWORD = "Correct horse battery 9"


class Server:
    def __init__(self, base, outbox, proc):
        self.base = base
        self.outbox = outbox
        self.proc = proc

    def admin(self, method, path, body):
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"content-type": "application/json", "authorization": "Bearer " + ADMIN_TOKEN},
        )
        with urllib.request.urlopen(req) as resp:
            return resp.status

    def add_user(self, user_id, mobile=None):
        assert self.admin("POST", "/admin/v1/users", {
            "user_id": user_id, "name": "Jane Doe", "email": user_id + "@example.com",
            "mobile": mobile, "primary_market": "GB", "password": PASSWORD,
        }) == 201

    def last_otp(self, user_id):
        lines = pathlib.Path(self.outbox).read_text().splitlines()
        for line in reversed(lines):
            m = json.loads(line)
            if m["purpose"] == "otp" and m["user_id"] == user_id:
                return m["code"]
        raise AssertionError("no OTP for " + user_id)


def start_server(*extra_args):
    """The workspace's server binary on 127.0.0.1; `extra_args`: more
    `serve` flags (e.g. the attestation policy)."""
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "devicetrust-server"
    assert binary.exists(), "build the server first: cargo build -p devicetrust-server"
    tmp = tempfile.mkdtemp()
    outbox = os.path.join(tmp, "outbox.jsonl")
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--rp-id", RP_ID,
         "--database", "sqlite://" + os.path.join(tmp, "dt.db"), "--outbox", outbox,
         "--admin-token", ADMIN_TOKEN, "--ip-rate-limit", "0", *extra_args],
        stderr=subprocess.PIPE, text=True,
    )
    base = None
    for line in proc.stderr:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            base = m.group(1)
            break
    assert base, "the server did not start"
    # Keep draining the log, or the server blocks once the pipe is full.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return Server(base, outbox, proc)


def stop_server(server):
    server.proc.terminate()
    assert server.proc.wait(timeout=30) == 0


@pytest.fixture(scope="session")
def server():
    s = start_server()
    yield s
    stop_server(s)


@pytest.fixture(scope="session")
def require_server():
    """A server that requires key attestation at registration."""
    s = start_server("--attestation", "require")
    yield s
    stop_server(s)
