"""The embedded servers' ports: a second stack's block stays clear of the ephemeral range, and a server
that cannot bind says why."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from petportal_devkit.devinfra import (
    LOOPBACK,
    InfraError,
    LocalKafka,
    ephemeral_port_range,
    free_port,
    free_port_offset,
)

pytestmark = pytest.mark.integration

STACK_PORTS = (8080, 8086, 9080, 19092, 27117, 1025, 8026)


def test_a_port_block_lies_below_the_ephemeral_range() -> None:
    first_ephemeral, _ = ephemeral_port_range()
    for _ in range(20):
        offset = free_port_offset(STACK_PORTS)
        assert min(STACK_PORTS) + offset > 1024
        assert max(STACK_PORTS) + offset < first_ephemeral, offset


def test_a_broker_whose_port_an_outgoing_connection_holds_fails_with_its_own_reason(tmp_path: Path) -> None:
    # An outgoing connection's source port is not a listener, so no "port in use" probe sees it; the
    # broker's own log (it exits 0 on a failed bind) is what tells the user why.
    port = free_port()
    with socket.create_server((LOOPBACK, 0)) as server, socket.socket() as client:
        client.bind((LOOPBACK, port))
        client.connect(server.getsockname())
        kafka = LocalKafka(port, log_file=tmp_path / "kafka.log")
        with pytest.raises(InfraError, match="Address in use"):
            kafka.start(timeout=30)
    assert not kafka.running


def test_a_free_port_lies_outside_the_ephemeral_range_binds_and_is_not_handed_out_twice() -> None:
    _, last_ephemeral = ephemeral_port_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    if last_ephemeral < 65535 - 50:  # room above the range (Linux's default leaves 4,535 ports)
        assert all(port > last_ephemeral for port in ports), ports
    for port in ports[:5]:
        with socket.create_server((LOOPBACK, port)):
            pass
