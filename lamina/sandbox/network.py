"""Each execution environment's own network: a namespace with loopback (where its Runtime API listens, on
127.0.0.1:9001 as on AWS) and one veth pair to the host, through which it reaches the outside by NAT.

Making one takes ~10 ms (netlink), so a background thread keeps a few ready and the cold-start path only
pops one. Namespaces are never reused: a stopped environment's network is deleted with it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator


from lamina.sandbox.firewall import Firewall, FirewallUnavailable, HostPort
from lamina.sandbox.host_slot import HostSlot
from lamina.sandbox.netns import current_namespace, entered, fresh_namespace, listener, write_sysctl

if TYPE_CHECKING:
    from pyroute2 import IPRoute

log = logging.getLogger(__name__)

RUNTIME_API_HOST, RUNTIME_API_PORT = "127.0.0.1", 9001
#: Inside every environment the veth end is called eth0.
GUEST_INTERFACE = "eth0"
#: Ready namespaces kept at least, and at most (the target grows when cold starts find none ready).
MIN_SPARES, MAX_SPARES = 2, 16
#: Each environment gets a /30 of the slot's /16.
ADDRESSES_PER_ENVIRONMENT = 4
MAX_NETWORKS = 65_536 // ADDRESSES_PER_ENVIRONMENT


@dataclass
class EnvironmentNetwork:
    """One environment's namespace and the sockets Lamina listens on inside it."""

    pool: NetworkPool
    index: int
    namespace_fd: int
    host_interface: str
    guest_address: str
    #: 127.0.0.1:9001 inside the namespace; the Runtime API endpoint serves it (and closes it).
    runtime_api_socket: socket.socket
    #: Allowed host services, at the same address inside the namespace: Lamina forwards their connections.
    forward_sockets: dict[HostPort, socket.socket] = field(default_factory=dict)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread is inside this network for the block (to start the sandbox there)."""
        with entered(self.namespace_fd, self.pool.home_fd):
            yield

    def delete(self) -> None:
        self.pool.delete(self)


class NetworkPool:
    """Makes, hands out and deletes environment networks for one host slot.

    One thread (`lamina-netns`) does all the netlink work, because pyroute2's sockets belong to the thread that
    opened them: it keeps `target` networks ready and serves cold starts that found none.
    """

    def __init__(self, slot: HostSlot, allowed: tuple[HostPort, ...], firewall: Firewall | None) -> None:
        """Without a firewall, environments get a namespace with loopback only: no way out, and none to the host."""
        self._slot = slot
        self._allowed = allowed
        self._firewall = firewall
        self.home_fd = current_namespace()
        self._netlink: IPRoute | None = None  # the host's, opened by the netns thread
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._spares: deque[EnvironmentNetwork] = deque()
        self._waiters: deque[concurrent.futures.Future[EnvironmentNetwork]] = deque()
        self._target = MIN_SPARES
        #: First in, first out: an index comes back into use only after every other one, long after the kernel
        #: finished removing the namespace (and its veth) that last had it.
        self._free_indexes = deque(range(MAX_NETWORKS))
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="lamina-netns", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- handing out -------------------------------------------------------------------------------------------
    async def take(self) -> EnvironmentNetwork:
        """A ready network, or the next one the netns thread makes (the number kept ready then grows)."""
        with self._lock:
            if self._spares:
                network = self._spares.popleft()
                self._wake.notify()
                return network
            if self._closing:
                raise OSError(errno.ESHUTDOWN, "the server is stopping")
            waiter: concurrent.futures.Future[EnvironmentNetwork] = concurrent.futures.Future()
            self._waiters.append(waiter)
            self._target = min(MAX_SPARES, self._target * 2)
            self._wake.notify()
        return await asyncio.wrap_future(waiter)

    def delete(self, network: EnvironmentNetwork) -> None:
        """Close the namespace and its sockets, once the environment's processes are gone: the kernel then
        removes the namespace and its veth pair by itself. Any thread may call it."""
        for sock in network.forward_sockets.values():
            sock.close()
        network.runtime_api_socket.close()
        os.close(network.namespace_fd)
        with self._lock:
            self._free_indexes.append(network.index)

    def close(self) -> None:
        """Stop the netns thread and delete the spares (environments delete their own networks)."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        while self._spares:
            self.delete(self._spares.popleft())
        if self._firewall is not None:
            self._firewall.remove()
        os.close(self.home_fd)

    # -- making (on the netns thread) --------------------------------------------------------------------------
    def _serve(self) -> None:
        # pyroute2 takes ~0.2 s to import: here, on this thread, it stays off the server's start-up.
        from pyroute2 import IPRoute

        if self._firewall is not None:
            self._netlink = IPRoute()
        try:
            while self._next_job():
                pass
        finally:
            if self._netlink is not None:
                self._netlink.close()
            with self._lock:
                waiters, self._waiters = list(self._waiters), deque()
            for waiter in waiters:
                waiter.set_exception(OSError(errno.ESHUTDOWN, "the server is stopping"))

    def _next_job(self) -> bool:
        """Make one network, for a waiting cold start first; False once the pool is closing."""
        with self._lock:
            while not self._closing and not self._waiters and len(self._spares) >= self._target:
                self._wake.wait()
            if self._closing:
                return False
        try:
            network = self._make()
        except OSError as error:
            log.error("cannot prepare an environment network: %s", error)
            with self._lock:
                if self._waiters:
                    self._waiters.popleft().set_exception(error)
                self._wake.wait(timeout=1.0)
            return True
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set_result(network)
            else:
                self._spares.append(network)
        return True

    def _make(self) -> EnvironmentNetwork:
        with self._lock:
            if not self._free_indexes:
                raise OSError(errno.EAGAIN, "every environment address of this slot is in use")
            index = self._free_indexes.popleft()
        try:
            return self._make_at(index)
        except BaseException:
            with self._lock:
                self._free_indexes.append(index)
            raise

    def _addresses(self, index: int) -> tuple[str, str]:
        first, second = self._slot.subnet_prefix
        offset = index * ADDRESSES_PER_ENVIRONMENT
        base = f"{first}.{second}.{offset // 256}"
        return f"{base}.{offset % 256 + 1}", f"{base}.{offset % 256 + 2}"

    def _make_at(self, index: int) -> EnvironmentNetwork:
        host_address, guest_address = self._addresses(index)
        host_interface = f"{self._slot.interface_prefix}{index}" if self._firewall is not None else ""
        with contextlib.ExitStack() as undo:
            with fresh_namespace(self.home_fd) as namespace_fd:
                undo.callback(os.close, namespace_fd)
                # No IPv6 on eth0 (made after this): it has no route out, and its link-local address would be a way
                # to the host. Loopback keeps ::1.
                write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")
                runtime_api = undo.enter_context(listener(RUNTIME_API_HOST, RUNTIME_API_PORT))
                forwards = {entry: undo.enter_context(listener(entry.host, entry.port))
                            for entry in self._allowed if entry.is_loopback}
                # Opened inside the namespace, so it configures the namespace's side from anywhere.
                guest = _open_netlink() if host_interface else None
            if guest is not None:
                with contextlib.closing(guest):
                    self._link(host_interface, host_address, namespace_fd)
                    guest_index = guest.link_lookup(ifname=GUEST_INTERFACE)[0]
                    guest.addr("add", index=guest_index, address=guest_address, prefixlen=30)
                    guest.link("set", index=guest_index, state="up")
                    guest.route("add", dst="0.0.0.0/0", gateway=host_address)
            undo.pop_all()
        return EnvironmentNetwork(self, index, namespace_fd, host_interface, guest_address if guest else "",
                                  runtime_api, forwards)

    def _link(self, host_interface: str, host_address: str, namespace_fd: int) -> None:
        """The veth pair: the host end here, `eth0` in the namespace. A same-named link left by a server that
        died is replaced."""
        assert self._netlink is not None
        try:
            self._netlink.link("add", ifname=host_interface, kind="veth",
                               peer={"ifname": GUEST_INTERFACE, "net_ns_fd": namespace_fd})
        except _netlink_error() as error:
            if error.code != errno.EEXIST:
                raise OSError(error.code, f"create {host_interface}: {error}") from None
            self._delete_link(host_interface)
            self._netlink.link("add", ifname=host_interface, kind="veth",
                               peer={"ifname": GUEST_INTERFACE, "net_ns_fd": namespace_fd})
        host_index = self._netlink.link_lookup(ifname=host_interface)[0]
        write_sysctl(f"net.ipv6.conf.{host_interface}.disable_ipv6", "1")
        self._netlink.addr("add", index=host_index, address=host_address, prefixlen=30)
        self._netlink.link("set", index=host_index, state="up")

    def _delete_link(self, host_interface: str) -> None:
        assert self._netlink is not None
        try:
            self._netlink.link("del", ifname=host_interface)
        except _netlink_error() as error:
            if error.code != errno.ENODEV:
                raise OSError(error.code, f"delete {host_interface}: {error}") from None


def open_network_pool(slot: HostSlot, allowed: tuple[HostPort, ...], missing: list[str]) -> NetworkPool | None:
    """The pool for this host, or None (with the reason added to `missing`) where namespaces cannot be made."""
    if os.geteuid() != 0:
        missing.append("server is not root: functions share the host's network, so they can reach its loopback "
                       "services, Lamina's API included")
        return None
    home_fd = current_namespace()
    try:
        with fresh_namespace(home_fd) as probe_fd:
            os.close(probe_fd)
    except OSError as error:
        missing.append(f"cannot make network namespaces ({error}): functions share the host's network, so they can "
                       "reach its loopback services, Lamina's API included")
        return None
    finally:
        os.close(home_fd)
    first, second = slot.subnet_prefix
    firewall: Firewall | None = None
    try:
        firewall = Firewall(slot.index, slot.interface_prefix, f"{first}.{second}.0.0/16", allowed)
        firewall.apply()
    except FirewallUnavailable as error:
        missing.append(f"{error}: functions have no outbound network (each still has its own loopback)")
        firewall = None
    pool = NetworkPool(slot, allowed, firewall)
    pool.start()
    if firewall is not None and _resolver_on_loopback():
        missing.append("the host's DNS resolver (/etc/resolv.conf) is on loopback, which functions cannot reach: "
                       "they cannot resolve names")
    return pool


def _resolver_on_loopback() -> bool:
    try:
        lines = open("/etc/resolv.conf").read().splitlines()
    except OSError:
        return False
    servers = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    return bool(servers) and all(server.startswith("127.") or server == "::1" for server in servers)


def _open_netlink() -> IPRoute:
    """A netlink socket in the calling thread's current namespace (only the netns thread imports pyroute2)."""
    from pyroute2 import IPRoute

    return IPRoute()


def _netlink_error() -> type[Exception]:
    from pyroute2.netlink.exceptions import NetlinkError

    return NetlinkError
