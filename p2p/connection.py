"""One authenticated, encrypted link over asyncio streams: the I/O shell around
:class:`p2p.secure.SecureChannel`.

Sending never blocks the caller: :meth:`Connection.send` appends the encoded message to
a queue bounded in bytes, and one writer task seals and writes what is queued, waiting
for the socket to drain between writes. A peer that stops reading therefore fills the
queue, not our memory: past the bound the link is closed ("the peer is not reading")
and what was queued is dropped. Receiving is a loop the peer manager drives with
:meth:`Connection.receive`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from chain.keys import PrivateKey

from .errors import LocalError, PeerGone, PeerTimeout, RemoteError
from .messages import Goodbye, Message, decode_message, encode_message
from .secure import DEFAULT_MAX_FRAME, ChannelState, SecureChannel

log = logging.getLogger("agora.p2p")

_READ_SIZE = 256 * 1024
#: How long a closing link may take to flush its GOODBYE.
_CLOSE_FLUSH_SECONDS = 1.0


async def open_channel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    node_key: PrivateKey,
    *,
    initiator: bool,
    expected_peer: bytes | None = None,
    max_frame: int = DEFAULT_MAX_FRAME,
    send_queue_bytes: int = 16 * 1024 * 1024,
    timeout: float = 5.0,
) -> Connection:
    """Run the Noise handshake on a fresh TCP stream; returns the open connection.
    Raises a :class:`RemoteError` (the stream is then closed) if it fails or times out."""
    channel = SecureChannel(node_key, initiator, expected_peer=expected_peer, max_frame=max_frame)
    early: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            if initiator:
                writer.write(channel.initiate())
            while channel.state is ChannelState.HANDSHAKE:
                data = await reader.read(_READ_SIZE)
                if not data:
                    raise PeerGone("the peer closed the connection during the handshake")
                reply, frames = channel.receive_data(data)
                early.extend(frames)  # the initiator may send frames right after message 3
                if reply:
                    writer.write(reply)
            await writer.drain()
    except TimeoutError:
        writer.close()
        raise PeerTimeout(f"handshake not finished within {timeout:g} s") from None
    except (RemoteError, PeerGone, OSError):
        writer.close()
        raise
    return Connection(reader, writer, channel, send_queue_bytes=send_queue_bytes,
                      initiator=initiator, early_frames=early)


class Connection:
    """An open link. ``remote_id`` is the peer's authenticated node id."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        channel: SecureChannel,
        *,
        send_queue_bytes: int,
        initiator: bool,
        early_frames: list[bytes] | None = None,
    ) -> None:
        assert channel.remote_node_id is not None
        self.remote_id: bytes = channel.remote_node_id
        self.initiator = initiator
        peername = writer.get_extra_info("peername")
        self.remote_host: str = peername[0] if peername else ""
        self.send_queue_bytes = send_queue_bytes
        self.queued_bytes = 0
        #: The most bytes ever queued at once (tests check it stays under the bound).
        self.max_queued_bytes = 0
        self.close_reason: str | None = None
        self._reader = reader
        self._writer = writer
        self._channel = channel
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is queued or being written
        self._idle.set()
        self._inbox: deque[bytes] = deque(early_frames or ())
        self._writer_task = asyncio.get_running_loop().create_task(self._write_loop())
        self.closed = asyncio.Event()

    @property
    def channel_open(self) -> bool:
        """False once the channel failed (a bad frame): nothing more can be sealed."""
        return self._channel.state is ChannelState.OPEN

    # ------------------------------------------------------------------ sending

    def send(self, message: Message) -> bool:
        """Queue ``message``. False (and the link closing) if the queue is full."""
        return self.send_encoded(encode_message(message))

    def send_encoded(self, frame: bytes) -> bool:
        if len(frame) > self._channel.max_frame:
            # Our caller's mistake, refused here rather than in the writer task, where
            # it would end the link and drop everything queued behind it.
            raise LocalError(f"a {len(frame)}-byte message is over the frame limit of "
                             f"{self._channel.max_frame}")
        if self.close_reason is not None:
            return False
        if self.queued_bytes + len(frame) > self.send_queue_bytes:
            self.abort(f"send queue over {self.send_queue_bytes} bytes: the peer is not reading")
            return False
        self._queue.append(frame)
        self._idle.clear()
        self.queued_bytes += len(frame)
        if self.queued_bytes > self.max_queued_bytes:
            self.max_queued_bytes = self.queued_bytes
        self._wakeup.set()
        return True

    async def _write_loop(self) -> None:
        queue = self._queue
        writer = self._writer
        seal = self._channel.seal
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while queue:
                    # Seal everything queued so far into one write: per-peer work is
                    # batched, and the socket sees few large writes.
                    parts = []
                    while queue:
                        frame = queue.popleft()
                        self.queued_bytes -= len(frame)
                        parts.append(seal(frame))
                    writer.write(b"".join(parts))
                    await writer.drain()
                self._idle.set()
        except (OSError, RuntimeError, LocalError) as exc:  # the socket or channel failed
            self._finish(f"write failed: {exc}")

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> Message:
        """The next message. Raises :class:`RemoteError` for bad input and
        :class:`PeerGone` when the link is closed."""
        while not self._inbox:
            if self.close_reason is not None:
                raise PeerGone(self.close_reason)
            try:
                data = await self._reader.read(_READ_SIZE)
            except OSError as exc:
                raise PeerGone(f"read failed: {exc}") from None
            if not data:
                raise PeerGone("the peer closed the connection")
            if self.close_reason is not None:
                raise PeerGone(self.close_reason)
            _, frames = self._channel.receive_data(data)
            self._inbox.extend(frames)
        return decode_message(self._inbox.popleft())

    # ------------------------------------------------------------------ closing

    async def close(self, reason: str, *, tell_peer: bool = True) -> None:
        """Close the link, first telling the peer why (bounded in time; the socket is
        closed even if this task is cancelled while it waits)."""
        if self.close_reason is not None:
            return
        try:
            if tell_peer and self.channel_open:
                with contextlib.suppress(LocalError):
                    self.send(Goodbye(reason[:256]))
                self.close_reason = reason
                with contextlib.suppress(TimeoutError, OSError, RuntimeError):
                    async with asyncio.timeout(_CLOSE_FLUSH_SECONDS):
                        await self._idle.wait()
        finally:
            self._finish(reason)

    def abort(self, reason: str) -> None:
        """Close at once without flushing (the peer is not reading, or misbehaved)."""
        self._finish(reason, abort=True)

    def _finish(self, reason: str, *, abort: bool = False) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        if self.closed.is_set():
            return
        self._channel.close()
        self._queue.clear()
        self.queued_bytes = 0
        self._idle.set()  # nothing more will be written: wake a close() waiting on it
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()
        if asyncio.current_task() is not self._writer_task:
            self._writer_task.cancel()
        self.closed.set()
