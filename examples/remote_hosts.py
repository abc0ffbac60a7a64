"""Workers on other hosts, through ssh, with mutual TLS: one per host, and one calling another.

    python examples/remote_hosts.py [-i KEY] [-o SSH_OPTION]... HOST [HOST...]

Each HOST needs passwordless ssh and this virtualenv at the same path (docs/remote.md). Prints,
per host, where its worker runs; then the worker on the last host calls the one on the first:

    h1: worker 1234 on h1 (mutual TLS: yes)
    h2: worker 1240 on h2 (mutual TLS: yes)
    h2 -> h1: 2 + 3 = 5
"""

from __future__ import annotations

import argparse
import os
import socket

import rpc_parallel as rp


class Adder(rp.Worker):
    @rp.rpc
    def where(self) -> str:
        return f"worker {os.getpid()} on {socket.gethostname()}"

    @rp.rpc
    def add(self, a: int, b: int) -> int:
        return a + b

    @rp.rpc
    def add_there(self, other: rp.WorkerHandle, a: int, b: int) -> int:
        """Call ``add`` of another worker, directly (its handle carries its address and CA)."""
        with Adder.connect(other) as conn:
            return conn.run(Adder.add, a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", dest="identity_file", help="ssh's identity file")
    parser.add_argument("-o", dest="options", action="append", default=[], help="an ssh -o option (repeatable)")
    parser.add_argument("hosts", nargs="+", metavar="HOST", help="[USER@]HOST")
    args = parser.parse_args()
    handles = []
    try:
        for host in args.hosts:
            user, _, name = host.rpartition("@")
            how = rp.Ssh(name, user=user or None, identity_file=args.identity_file, ssh_options=args.options)
            handles.append(Adder.spawn(how=how))
            with Adder.connect(handles[-1]) as conn:
                print(f"{host}: {conn.run(Adder.where)} (mutual TLS: {'yes' if handles[-1].ca else 'no'})")
        with Adder.connect(handles[-1]) as conn:
            print(f"{args.hosts[-1]} -> {args.hosts[0]}: 2 + 3 = {conn.run(Adder.add_there, handles[0], 2, 3)}")
    finally:
        for handle in handles:
            handle.shutdown()


if __name__ == "__main__":
    main()
