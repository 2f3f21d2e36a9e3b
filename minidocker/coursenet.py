"""The network sandbox of chapter 09: a fresh network + mount namespace to experiment in.

Course code, like :mod:`minidocker.coursemap`: notebook 09, the exercises (ch09, mydocker) and the
network tests use it; minidocker itself never imports it. It drives the CLI (``python -m
minidocker``) and the host's ``unshare``, ``nsenter``, ``ip`` and ``nft`` as a learner would::

    from minidocker.coursenet import Sandbox
    with Sandbox(state_root) as box:          # one holder process: unshare -n -m
        box.md("network", "create", "web")     # minidocker inside the sandbox
        box.sh("ip -br addr")                  # what the kernel has there
        assert box.wait_clean() == []          # nothing left behind (veths, rules, netns, processes)

One process, started with ``unshare -n -m``, holds a fresh network namespace and a
private mount namespace: its own sysfs (so /sys/class/net shows *its* links), a
tmpfs on /run/netns (named namespaces stay inside), ``lo`` up. Commands run in it
with ``nsenter``. Nothing the tests create can touch the host's links, routes or
firewall (a dockerd's FORWARD DROP does not apply here), and everything dies with
the holder. :meth:`Sandbox.leftovers` lists what minidocker left inside: the tests
check it after each test and before the sandbox goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Sandbox"]

REPO = Path(__file__).resolve().parent.parent
_SETUP = ("mount -t sysfs sysfs /sys && mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns "
          "&& ip link set lo up && echo ready && exec sleep 100000")


class Sandbox:
    """A network+mount namespace with its own MINIDOCKER_ROOT (and firewall backend, if given:
    ``nft`` or ``iptables``, as MINIDOCKER_FIREWALL)."""

    def __init__(self, state_root: Path | str, firewall: str | None = None) -> None:
        self.state_root = state_root = Path(state_root)
        self.holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private",
                                        "sh", "-c", _SETUP], stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            self.holder.kill()
            self.holder.wait()
            raise RuntimeError(f"failed to set up the network sandbox: {line!r}")
        # the shell exec'd sleep: same PID, inside both namespaces
        self.pid = self.holder.pid
        self.env = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_BRIDGE"}
        self.env["MINIDOCKER_ROOT"] = str(state_root)
        self.env["PYTHONPATH"] = str(REPO)
        if firewall is not None:
            self.env["MINIDOCKER_FIREWALL"] = firewall

    def argv(self, *args: str) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "--", *args]

    def sh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the sandbox."""
        return subprocess.run(self.argv("sh", "-c", command), capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=REPO)

    def md(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``minidocker ARGS`` in the sandbox."""
        return subprocess.run(self.argv(sys.executable, "-m", "minidocker", *args), capture_output=True,
                              text=True, timeout=timeout, env=self.env, cwd=REPO)

    def md_background(self, *args: str) -> subprocess.Popen[str]:
        """Start ``minidocker ARGS`` in the sandbox without waiting (a long-running container)."""
        return subprocess.Popen(self.argv(sys.executable, "-m", "minidocker", *args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=REPO)

    def fetch(self, url: str, netns: str | None = None, tries: int = 20) -> str:
        """GET ``url`` from the sandbox (or from its named namespace ``netns``), retrying while a
        server starts. Python's urllib, because the host's static busybox wget crashes in getaddrinfo."""
        code = ("import sys, time, urllib.request\n"
                f"for i in range({tries}):\n"
                "    try:\n"
                f"        print(urllib.request.urlopen({url!r}, timeout=2).read().decode(), end='')\n"
                "        sys.exit(0)\n"
                "    except OSError as err:\n"
                "        last = err; time.sleep(0.2)\n"
                f"sys.exit('failed to fetch {url}: ' + str(last))\n")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        result = subprocess.run(self.argv(*prefix, sys.executable, "-I", "-c", code), capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    # -- what is there -------------------------------------------------------------------
    def links(self) -> list[dict]:
        return json.loads(self.sh("ip -j -d link show").stdout)

    def nft_rules(self) -> list[dict]:
        out = self.sh("nft -j -a list table ip minidocker")
        if out.returncode != 0:
            return []
        return [i["rule"] for i in json.loads(out.stdout)["nftables"] if "rule" in i]

    def nft_tables(self) -> list[str]:
        return [line for line in self.sh("nft list tables").stdout.splitlines() if line.strip()]

    def iptables_rules(self) -> list[str]:
        """Our chains and rules in ``iptables-save`` (MINIDOCKER*, tagged minidocker), or []."""
        saved = self.sh("iptables-save").stdout.splitlines()
        return [line for line in saved if "minidocker" in line.lower() and not line.startswith("#")]

    def firewall_rules(self) -> list[str]:
        """Everything of ours in the firewall, both backends: nft rules (as JSON) and iptables lines."""
        return [json.dumps(rule) for rule in self.nft_rules()] + self.iptables_rules()

    def networks(self) -> dict[str, dict]:
        directory = self.state_root / "lib" / "networks"
        if not directory.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")}

    def leftovers(self, allow_networks: bool = True) -> list[str]:
        """What containers left behind: veths, endpoints, container rules, named netns, processes.

        With ``allow_networks`` False, networks themselves (bridges, records, the nft table, the
        MINIDOCKER iptables chains and jumps) count too.
        """
        problems = []
        for link in self.links():
            name = link["ifname"]
            kind = link.get("linkinfo", {}).get("info_kind")
            if name.startswith("md") and (kind == "veth" or not allow_networks):
                problems.append(f"link {name} ({kind})")
        problems += [f"netns {n}" for n in os.listdir(f"/proc/{self.pid}/root/run/netns")]
        for name, net in self.networks().items():
            if not allow_networks:
                problems.append(f"network record {name}")
            problems += [f"endpoint {ep['name']} on {name}" for ep in net["endpoints"].values()]
        for rule in self.nft_rules():
            if not allow_networks or str(rule.get("comment", "")).startswith("ctr:"):
                problems.append(f"nft rule {rule.get('comment')} in {rule['chain']}")
        if not allow_networks:
            problems += [f"nft {t}" for t in self.nft_tables() if "minidocker" in t]
        for line in self.iptables_rules():
            if not allow_networks or "minidocker:ctr:" in line:
                problems.append(f"iptables {line}")
        problems += [f"process {p}" for p in self.processes() if p != self.pid]
        return problems

    def wait_clean(self, allow_networks: bool = True, timeout: float = 5) -> list[str]:
        """leftovers(), retried while the kernel finishes destroying namespaces (veths go with them)."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self.leftovers(allow_networks)
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.1)

    def processes(self) -> list[int]:
        """PIDs in the sandbox's network namespace."""
        mine = os.readlink(f"/proc/{self.pid}/ns/net")
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink(f"/proc/{name}/ns/net") == mine:
                        found.append(int(name))
                except OSError:
                    continue
        return found

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()
        if self.holder.stdout is not None:
            self.holder.stdout.close()
