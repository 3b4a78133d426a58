"""A fake web server publishing arbitrary documents, for importers that read from an address.

``FakeDocumentServer`` serves what a test puts at a path (``put``), a body of any size streamed
in chunks without holding it in memory (``put_huge``: a 50 MB feed costs a 64 KiB buffer), and a
path that answers only once an ``asyncio.Event`` is set (``put_held``: a slow server, without
sleeping). Calls are recorded under the request path (``"/feed.xml"``), so ``calls_to`` and
``wait_for`` work per document; an unknown path answers 404 and is recorded too.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiohttp import web

from tests.fakes import FakeHttpServer, RecordedCall, build_response

__all__ = ["Document", "FakeDocumentServer", "HeldDocument", "HugeDocument"]

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    status: int = 200


@dataclass(frozen=True)
class HugeDocument:
    """`size` bytes: `head` followed by `filler` repeated, sent in chunks as the client reads."""

    size: int
    content_type: str
    head: bytes = b""
    filler: bytes = b" "


@dataclass(frozen=True)
class HeldDocument:
    """`document`, answered (headers included) only once `release` is set."""

    document: Document
    release: asyncio.Event


class FakeDocumentServer(FakeHttpServer):
    """Serves documents at paths set with `put`, `put_huge` and `put_held`."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, Document | HugeDocument | HeldDocument] = {}
        self.streamed: dict[str, int] = {}
        """Bytes of each huge document actually sent (the client may hang up early)."""

    def address(self, path: str) -> str:
        """The full URL of `path` on this server."""
        return self.url + path.lstrip("/")

    def put(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "application/octet-stream",
        status: int = 200,
    ) -> str:
        """Serve `body` at `path`; returns its URL."""
        data = body.encode() if isinstance(body, str) else body
        return self._set(path, Document(data, content_type, status))

    def put_huge(
        self,
        path: str,
        megabytes: float,
        content_type: str = "application/rss+xml",
        *,
        head: bytes = b"",
        filler: bytes = b" ",
    ) -> str:
        """Serve `megabytes` MiB at `path`, generated while streaming; returns its URL."""
        size = int(megabytes * 1024 * 1024)
        return self._set(path, HugeDocument(size, content_type, head, filler))

    def put_held(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "application/octet-stream",
        status: int = 200,
    ) -> asyncio.Event:
        """Serve `body` at `path` once the returned event is set (or the server stops)."""
        data = body.encode() if isinstance(body, str) else body
        release = asyncio.Event()
        self._set(path, HeldDocument(Document(data, content_type, status), release))
        return release

    def _set(self, path: str, document: Document | HugeDocument | HeldDocument) -> str:
        key = "/" + path.lstrip("/")
        self.documents[key] = document
        return self.address(key)

    # -- serving ------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Recorded and answered by path; the whole app is one catch-all route.
        path = request.path

        async def respond(call: RecordedCall) -> web.StreamResponse:
            return await self._respond(request, path)

        return await self._serve(
            request,
            name=path,
            params=dict(request.query),
            body=None,
            raw_body=b"",
            respond=respond,
        )

    async def _respond(self, request: web.Request, path: str) -> web.StreamResponse:
        document = self.documents.get(path)
        if document is None:
            return build_response(404, "not found", {"Content-Type": "text/plain"})
        if isinstance(document, HeldDocument):
            await self._hold(document.release)
            document = document.document
        if isinstance(document, HugeDocument):
            return await self._stream(request, path, document)
        return build_response(
            document.status, document.body, {"Content-Type": document.content_type}
        )

    async def _hold(self, release: asyncio.Event) -> None:
        """Wait for `release`, or for the server to stop (so stop() never hangs on it)."""
        released = asyncio.ensure_future(release.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({released, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            stopping.cancel()

    async def _stream(
        self, request: web.Request, path: str, document: HugeDocument
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": document.content_type})
        # A declared length lets the client refuse early; the reader must cope either way.
        response.content_length = document.size
        await response.prepare(request)
        self.streamed[path] = 0
        chunk = _repeat(document.filler, CHUNK)
        remaining = document.size
        # A client that stops reading closes the connection; that ends the stream, not the test.
        with contextlib.suppress(ConnectionError):
            if document.head:
                await response.write(document.head[:remaining])
                self._count(path, min(len(document.head), remaining))
                remaining -= min(len(document.head), remaining)
            while remaining > 0 and not self._stopping.is_set():
                piece = chunk[:remaining]
                await response.write(piece)
                self._count(path, len(piece))
                remaining -= len(piece)
            await response.write_eof()
        return response

    def _count(self, path: str, sent: int) -> None:
        self.streamed[path] = self.streamed.get(path, 0) + sent


def _repeat(filler: bytes, size: int) -> bytes:
    """`filler` repeated to exactly `size` bytes."""
    if not filler:
        raise ValueError("the filler must not be empty")
    return (filler * (size // len(filler) + 1))[:size]
