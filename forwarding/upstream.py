"""The upstream HTTP client: one aiohttp session per worker, explicit timeouts.

Timeouts, and why each is what it is:
- connect: `UPSTREAM_CONNECT_TIMEOUT`, the TCP/TLS connect only.
- response headers: `ANTHROPIC_RESPONSE_HEADER_TIMEOUT`, from sending the request
  until the status line and headers arrive. Non-streaming calls with long
  extended thinking spend minutes here, so it is generous and separate.
- body idle: `UPSTREAM_READ_IDLE_TIMEOUT`, the longest silence between two body
  chunks; applied by the relay loop (see `read_chunk`).
- no total timeout: a stream may legitimately run for as long as it keeps talking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from multidict import CIMultiDict

from runtime.settings import Settings
from streaming.errors import ProxyError


class UpstreamClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,  # streams are long-lived; a pool cap would queue new ones silently
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=self._settings.upstream_connect_timeout,
                sock_read=None,
            ),
            # Relay the bytes as encoded; the log decodes on the side.
            auto_decompress=False,
            # Send exactly the client's headers: no aiohttp defaults added.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient used before start()")
        return self._session

    async def open(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> aiohttp.ClientResponse:
        """Send the request and return once the response headers are in.

        The caller owns the response and must close or release it.
        """
        try:
            async with asyncio.timeout(self._settings.response_header_timeout):
                return await self.session.request(
                    method,
                    url,
                    headers=CIMultiDict(headers),
                    data=body if body else None,
                    allow_redirects=False,
                )
        except TimeoutError:
            raise ProxyError(
                504,
                "Upstream did not send response headers within "
                f"{self._settings.response_header_timeout:g}s "
                "(ANTHROPIC_RESPONSE_HEADER_TIMEOUT)",
                reason="upstream_header_timeout",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise ProxyError(
                502, f"Upstream unreachable: {exc.os_error or exc}", reason="upstream_unreachable"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ProxyError(
                502,
                f"Upstream request failed: {type(exc).__name__}: {exc}",
                reason="upstream_failed",
            ) from None

    @property
    def idle_timeout(self) -> float:
        return self._settings.upstream_read_idle_timeout

    async def read_chunk(self, response: aiohttp.ClientResponse) -> bytes:
        """The next body chunk as it arrives, b"" at the end; bounded by the idle timeout."""
        async with asyncio.timeout(self.idle_timeout):
            return await response.content.readany()
