"""What-if for P1 (`p1_ack_latency.py --nodelay`), never loaded by the product: on the bot's PYTHONPATH it
turns on TCP_NODELAY for every TCP connection the process opens. slack_sdk's built-in Socket Mode client
sets it only when it connects through a proxy, so its small ack frames otherwise wait for Nagle's
algorithm (the previous frame's TCP ACK, which the peer may delay up to ~40 ms)."""
import socket

_create_connection = socket.create_connection


def create_connection(*args, **kwargs):
    sock = _create_connection(*args, **kwargs)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return sock


socket.create_connection = create_connection
