"""A TCP proxy whose link can be cut and restored: a database (or any server) that goes away and
comes back, for the fault tests."""

from __future__ import annotations

import asyncio


class CuttableProxy:
    """A TCP proxy on loopback in front of a real server, whose link can be cut (open connections
    closed, new ones closed at once) and restored: a database that goes away and comes back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.cut = False
        self._holding = False
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def restore(self) -> None:
        """New connections go through again."""
        self.cut = False

    def sever(self) -> None:
        self.cut = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def sever_after_answers(self, grace: float = 1.0) -> None:
        """Cut the link as a server going away cleanly would: from now on nothing more reaches the
        target (new connections are refused, and what clients send is held back), but for ``grace``
        seconds the target's answers to what it already received still reach the clients; then
        sever. A request the target got whole is answered; one it got in part is never processed."""
        self.cut = True
        self._holding = True
        await asyncio.sleep(grace)
        self.sever()
        self._holding = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self.cut:  # cut while this link was connecting: it must not carry anything past the cut
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer, upstream=True), self._pipe(up_reader, writer))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and self._holding:
                    continue  # held back (sever_after_answers): the target never sees it
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._links.discard(writer)
            writer.transport.abort()
