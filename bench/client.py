#!/usr/bin/env python3
"""Small HTTP helper for bench/run.sh (standard library only; talks to 127.0.0.1 only).

  client.py create HOST:PORT N [PATH]   create N sessions (GET PATH, default /incr, no cookie)
                                        and print their cookies, one "name=value" per line
  client.py chain HOST:PORT PATH...     GET each PATH in order on one session (starting with no
                                        cookie, always sending the latest Set-Cookie back) and
                                        print the final cookie
  client.py check HOST:PORT             check the routes' contract; print problems, exit 1 if any
  client.py replay HOST:PORT PATH N SPEC
                                        send N sequential GET PATH on one connection; SPEC is "-"
                                        (no cookie), "@FILE" (cookies from FILE, round robin) or
                                        a literal "name=value" cookie; exit 1 on a non-2xx answer

The whole "name=value" of the first Set-Cookie header is captured, so no cookie name is
hard-coded. Fails loudly (exit 1) on a non-200 answer or a missing Set-Cookie header.
"""
import http.client
import sys
import threading


def connect(hostport):
    host, port = hostport.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=10)


def get(conn, path, cookie=None):
    headers = {"Cookie": cookie} if cookie else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    set_cookie = resp.getheader("Set-Cookie")
    return resp.status, body, (set_cookie.split(";", 1)[0].strip() if set_cookie else None)


def create_worker(hostport, path, count, out, errors):
    conn = connect(hostport)
    try:
        for _ in range(count):
            status, _body, cookie = get(conn, path)
            if status != 200 or not cookie:
                errors.append(f"status {status}, Set-Cookie {cookie!r}")
                return
            out.append(cookie)
    except Exception as exc:  # noqa: BLE001 - report anything
        errors.append(repr(exc))
    finally:
        conn.close()


def create(hostport, n, path="/incr"):
    threads_n = max(1, min(8, n))
    out, errors, threads = [], [], []
    for i in range(threads_n):
        count = n // threads_n + (1 if i < n % threads_n else 0)
        t = threading.Thread(target=create_worker, args=(hostport, path, count, out, errors))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if errors or len(out) != n:
        sys.stderr.write(f"client.py create: {len(out)}/{n} sessions created; errors: {errors[:3]}\n")
        sys.exit(1)
    sys.stdout.write("\n".join(out) + "\n")


def chain(hostport, paths):
    conn = connect(hostport)
    cookie = None
    for path in paths:
        status, body, new_cookie = get(conn, path, cookie)
        if status != 200:
            sys.stderr.write(f"client.py chain: {path} -> {status} {body!r}\n")
            sys.exit(1)
        cookie = new_cookie or cookie
    if not cookie:
        sys.stderr.write("client.py chain: no Set-Cookie seen\n")
        sys.exit(1)
    print(cookie)


def check(hostport):
    problems = []
    conn = connect(hostport)

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: got {got!r}, want {want!r}")

    s, b, c = get(conn, "/")
    expect("GET / status", s, 200)
    expect("GET / body", b.strip(), "ok")
    expect("GET / Set-Cookie", c, None)
    s, b, c = get(conn, "/read")
    expect("GET /read (no cookie) body", b.strip(), "0")
    expect("GET /read (no cookie) Set-Cookie", c, None)
    s, b, c = get(conn, "/incr")
    expect("GET /incr (no cookie) body", b.strip(), "1")
    if not c:
        problems.append("GET /incr (no cookie): no Set-Cookie")
        c = ""
    cookie = c
    s, b, c2 = get(conn, "/incr", cookie)
    expect("GET /incr (cookie) body", b.strip(), "2")
    cookie = c2 or cookie
    s, b, _ = get(conn, "/read", cookie)
    expect("GET /read (cookie) body", b.strip(), "2")
    s, b, _ = get(conn, "/read?key=other", cookie)
    expect("GET /read?key=other body", b.strip(), "0")
    s, b, _ = get(conn, "/incr?key=other", cookie)
    expect("GET /incr?key=other body", b.strip(), "1")
    s, b, c = get(conn, "/", cookie)
    expect("GET / (cookie) body", b.strip(), "ok")
    for p in problems:
        print(f"  contract: {p}")
    sys.exit(1 if problems else 0)


def replay(hostport, path, n, spec):
    if spec == "-":
        cookies = [None]
    elif spec.startswith("@"):
        with open(spec[1:]) as f:
            cookies = [line.strip() for line in f if line.strip()]
    else:
        cookies = [spec]
    conn = connect(hostport)
    for i in range(n):
        status, body, _ = get(conn, path, cookies[i % len(cookies)])
        if not 200 <= status < 300:
            sys.stderr.write(f"client.py replay: {path} -> {status} {body!r}\n")
            sys.exit(1)


def main():
    cmd, hostport = sys.argv[1], sys.argv[2]
    if cmd == "create":
        create(hostport, int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "/incr")
    elif cmd == "chain":
        chain(hostport, sys.argv[3:])
    elif cmd == "replay":
        replay(hostport, sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "check":
        check(hostport)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
