#!/usr/bin/env python3
"""Runs BitBake's own PR server in the foreground, for the benchmarks.

`bitbake-prserv --start` double-forks into a daemon; to count the server's CPU the benchmarks
need its pid, so this launcher imports `prserv.serv` from a BitBake checkout (not part of this
repository) and serves in this very process. It stops on SIGTERM/SIGINT (BitBake's own handlers)
and, on Linux, when its parent dies, so a crashed benchmark leaves no orphan.

    BITBAKE_DIR=/path/to/bitbake python3 bench/bitbake-prserv-launcher.py \
        --file /tmp/pr.sqlite3 --host 127.0.0.1 --port 8585

Exits 2 when the checkout is missing or has no lib/prserv.
"""
import argparse
import logging
import os
import signal
import sys


def die_with_parent():
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass  # not Linux: the harness still stops us by pid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bitbake-dir", default=os.environ.get("BITBAKE_DIR"),
                        help="BitBake checkout (default: $BITBAKE_DIR)")
    parser.add_argument("--file", required=True, help="sqlite database file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--upstream", default=None, help="upstream PR server host:port")
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args()

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        sys.stderr.write("launcher: loopback addresses only\n")
        return 2
    if not args.bitbake_dir or not os.path.isdir(os.path.join(args.bitbake_dir, "lib", "prserv")):
        sys.stderr.write("launcher: set BITBAKE_DIR (or --bitbake-dir) to a BitBake checkout with lib/prserv\n")
        return 2

    die_with_parent()
    sys.path.insert(0, os.path.join(os.path.abspath(args.bitbake_dir), "lib"))
    logging.basicConfig(level=getattr(logging, args.loglevel.upper(), logging.WARNING),
                        stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    import prserv.serv

    # bb sets the "BitBake" logger to DEBUG on import; match the level asked for (like our server's
    # --log-level warn) so per-connection log lines do not weigh on the measurement.
    logging.getLogger("BitBake").setLevel(getattr(logging, args.loglevel.upper(), logging.WARNING))

    # Older BitBake (before 2.10) has no upstream parameter: pass it only when asked for.
    extra = {"upstream": args.upstream} if args.upstream else {}
    server = prserv.serv.PRServer(os.path.abspath(args.file), read_only=args.read_only, **extra)
    server.start_tcp_server(args.host, args.port)
    sys.stderr.write("launcher: BitBake PR server pid %d on %s:%d, database %s\n"
                     % (os.getpid(), args.host, args.port, args.file))
    sys.stderr.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
