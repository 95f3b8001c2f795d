"""Kernel connections the scenarios drive: a server's WebSocket, or ZeroMQ straight (floor).

Both offer the same three calls, ``send``, ``recv`` and ``close``, so each kernel scenario is
written once and runs against every target. :func:`handshake` makes a fresh connection usable:
it repeats ``kernel_info_request`` until the reply and an IOPub message for it have arrived,
which proves both the shell and the IOPub paths are live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any, Literal, Protocol

from jupyter_client.asynchronous.client import AsyncKernelClient
from websockets.asyncio.client import ClientConnection, connect

from bench.messages import (
    V1_SUBPROTOCOL,
    Incoming,
    decode_json,
    decode_v1,
    encode_json,
    encode_v1,
    new_header,
)

DELIMITER = b"<IDS|MSG>"

__all__ = ["Channel", "WebSocketChannel", "WireProtocol", "ZmqChannel", "handshake"]

WireProtocol = Literal["json", "v1", "zmq"]


class Channel(Protocol):
    """One client's connection to a kernel."""

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Send a message on ``channel``; returns its ``msg_id``."""
        ...

    async def recv(self) -> Incoming:
        """The next message from any channel."""
        ...

    async def close(self) -> None:
        """Close the connection (the kernel keeps running)."""
        ...


class WebSocketChannel:
    """A kernel WebSocket (``/api/kernels/<id>/channels``) speaking JSON or v1."""

    def __init__(self, ws: ClientConnection, protocol: WireProtocol, session: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.session = session

    @classmethod
    async def open(
        cls,
        base_url: str,
        kernel_id: str,
        *,
        headers: dict[str, str],
        token: str,
        protocol: WireProtocol,
        compression: bool,
    ) -> WebSocketChannel:
        """Connect to a kernel's channels; ``protocol`` is ``json`` or ``v1``."""
        session = uuid.uuid4().hex
        ws_url = base_url.replace("http://", "ws://", 1)
        uri = f"{ws_url}api/kernels/{kernel_id}/channels?session_id={session}&token={token}"
        ws = await connect(
            uri,
            subprotocols=[V1_SUBPROTOCOL] if protocol == "v1" else None,  # type: ignore[list-item]  # plain str is a valid Subprotocol
            additional_headers=headers,
            compression="deflate" if compression else None,
            max_size=None,
            max_queue=256,
            open_timeout=60,
            ping_interval=None,
        )
        if protocol == "v1" and ws.subprotocol != V1_SUBPROTOCOL:
            await ws.close()
            raise RuntimeError(f"server did not select {V1_SUBPROTOCOL} (got {ws.subprotocol})")
        return cls(ws, protocol, session)

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Send one message in this connection's wire format."""
        header = new_header(msg_type, self.session)
        if self.protocol == "v1":
            await self.ws.send(encode_v1(channel, header, content))
        else:
            await self.ws.send(encode_json(channel, header, content))
        return str(header["msg_id"])

    async def recv(self) -> Incoming:
        """Receive and decode one frame."""
        frame = await self.ws.recv()
        if self.protocol == "v1":
            if isinstance(frame, str):
                raise RuntimeError("text frame on a v1 connection")
            return decode_v1(frame)
        return decode_json(frame)

    async def close(self) -> None:
        """Close the WebSocket."""
        await self.ws.close()


class ZmqChannel:
    """The kernel's own ZeroMQ sockets through jupyter_client's async client (the floor)."""

    def __init__(self, client: AsyncKernelClient) -> None:
        self.client = client
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.readers = [
            asyncio.create_task(self._read("shell")),
            asyncio.create_task(self._read("iopub")),
        ]

    @classmethod
    async def open(cls, connection_info: Any) -> ZmqChannel:
        """Connect a new client (its own IOPub subscription) to a running kernel."""
        client = AsyncKernelClient()
        client.load_connection_info(connection_info)
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        return cls(client)

    async def _read(self, channel: str) -> None:
        # Raw frames, decoded as far as the WebSocket clients decode theirs (header and parent
        # header; content on demand), so the floor is not slowed by a heavier parser. The
        # signature is not checked: the harness trusts its own kernel.
        zmq_channel = self.client.shell_channel if channel == "shell" else self.client.iopub_channel
        socket = zmq_channel.socket
        while True:
            frames: list[bytes] = await socket.recv_multipart()
            start = frames.index(DELIMITER) + 2  # skip the delimiter and the HMAC
            header = json.loads(frames[start])
            parent = json.loads(frames[start + 1]) if len(frames[start + 1]) > 2 else {}
            content = frames[start + 3]
            await self.queue.put(
                Incoming(channel, header["msg_type"], parent.get("msg_id"), len(content), content)
            )

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Send on the shell channel (the only one the scenarios write to)."""
        if channel != "shell":
            raise ValueError("the floor client only sends on shell")
        msg = self.client.session.msg(msg_type, content)
        self.client.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    async def recv(self) -> Incoming:
        """The next message from shell or IOPub."""
        return await self.queue.get()

    async def close(self) -> None:
        """Stop the readers and close the sockets."""
        for task in self.readers:
            task.cancel()
        for task in self.readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.client.stop_channels()


async def handshake(channel: Channel, *, timeout: float = 60.0) -> None:
    """Repeat ``kernel_info_request`` until its reply and an IOPub message for it arrive."""
    async with asyncio.timeout(timeout):
        while True:
            msg_id = await channel.send("shell", "kernel_info_request", {})
            replied = iopub_seen = False
            try:
                async with asyncio.timeout(1.0):
                    while not (replied and iopub_seen):
                        msg = await channel.recv()
                        if msg.parent_id != msg_id:
                            continue
                        if msg.msg_type == "kernel_info_reply":
                            replied = True
                        elif msg.channel == "iopub":
                            iopub_seen = True
            except TimeoutError:
                continue
            return
