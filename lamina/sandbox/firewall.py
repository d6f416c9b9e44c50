"""The host's packet filter for one server's environments (nftables, one table per host slot).

Environments reach the outside through NAT, and nothing else: not the host's own services (on any of its
addresses), not another environment (of this server or another), and nothing on the host can open a connection
to a port an environment listens on. What a function may not reach is refused at once (a TCP reset or ICMP
error, like a closed port), rather than left to time out. Operators name the host services functions may use (`--allow-host-port`).
"""
from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lamina.sandbox.host_slot import SANDBOX_NETWORK

ALL_SANDBOX_INTERFACES = "lmn*"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
#: Created once, by the first server that had to turn forwarding on: the host keeps routing nothing but
#: its environments' traffic, as before.
FORWARD_GUARD_TABLE = "lamina_forward_guard"
NFT_TIMEOUT_S = 10.0


class FirewallUnavailable(Exception):
    """nftables is missing or refused the rules; the message says which."""


@dataclass(frozen=True)
class HostPort:
    """An address and TCP port on the host that functions may connect to."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, separator, port = text.rpartition(":")
        if not separator or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        host = host.strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        ipaddress.IPv4Address(host)
        return cls(host, int(port))

    @property
    def is_loopback(self) -> bool:
        return ipaddress.IPv4Address(self.host).is_loopback


def table_name(slot_index: int) -> str:
    return f"lamina_{slot_index}"


def ruleset(slot_index: int, interface_prefix: str, subnet: str, allowed: tuple[HostPort, ...]) -> str:
    """The `nft -f` script that (re)creates the slot's table."""
    own = f'iifname "{interface_prefix}*"'
    to_own = f'oifname "{interface_prefix}*"'
    allowed_rules = "".join(
        f"        {own} ip daddr {entry.host} tcp dport {entry.port} accept\n" for entry in allowed if not entry.is_loopback
    )
    table = table_name(slot_index)
    return (
        f"table inet {table}\n"
        f"delete table inet {table}\n"
        f"table inet {table} {{\n"
        "    chain input {\n"
        "        type filter hook input priority -10; policy accept;\n"
        f"        {own} ct state established,related accept\n"
        f"{allowed_rules}"
        f"        {own} reject\n"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority -10; policy accept;\n"
        f"        {own} ip daddr {SANDBOX_NETWORK} reject\n"
        f'        {own} oifname "{ALL_SANDBOX_INTERFACES}" reject\n'
        f"        {own} meta nfproto ipv4 accept\n"
        f"        {own} reject\n"
        f"        {to_own} ct state established,related accept\n"
        f"        {to_own} drop\n"
        "    }\n"
        "    chain output {\n"
        "        type filter hook output priority -10; policy accept;\n"
        f"        {to_own} ct state established,related accept\n"
        f"        {to_own} drop\n"
        "    }\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f"        ip saddr {subnet} ip daddr != {SANDBOX_NETWORK} masquerade\n"
        "    }\n"
        "}\n"
    )


def _forward_guard() -> str:
    return (
        f"table inet {FORWARD_GUARD_TABLE} {{\n"
        "    chain forward {\n"
        "        type filter hook forward priority -20; policy accept;\n"
        f'        iifname != "{ALL_SANDBOX_INTERFACES}" oifname != "{ALL_SANDBOX_INTERFACES}" drop\n'
        "    }\n"
        "}\n"
    )


class Firewall:
    def __init__(self, slot_index: int, interface_prefix: str, subnet: str, allowed: tuple[HostPort, ...]) -> None:
        self._nft = shutil.which("nft")
        if self._nft is None:
            raise FirewallUnavailable("nft (Debian package nftables) not found")
        self._slot_index = slot_index
        self._script = ruleset(slot_index, interface_prefix, subnet, allowed)

    def apply(self) -> None:
        """Install the slot's table (replacing one a crashed server left) and let the host forward for it."""
        if IP_FORWARD.read_text().strip() != "1":
            # Forwarding was off: the guard keeps the host from routing anything but environments' traffic.
            self._run(_forward_guard())
            IP_FORWARD.write_text("1")
        self._run(self._script)

    def remove(self) -> None:
        self._run(f"table inet {table_name(self._slot_index)}\ndelete table inet {table_name(self._slot_index)}\n")

    def _run(self, script: str) -> None:
        assert self._nft is not None
        try:
            result = subprocess.run([self._nft, "-f", "-"], input=script, capture_output=True, text=True,
                                    timeout=NFT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise FirewallUnavailable(f"nft failed: {error}") from None
        if result.returncode != 0:
            raise FirewallUnavailable(f"nft refused the rules: {result.stderr.strip()}")
