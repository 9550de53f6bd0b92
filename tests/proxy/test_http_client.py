"""The backend client's wire: raw backends that split, stall, overflow, lie and hang up."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.proxy import httpclient

from ..dialects.test_calendar import NOT_ASCII_DIGITS

Script = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]
LIMIT = 64 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


class Backend:
    """A raw TCP backend: reads each request's head, then runs `script` on the socket."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")), 0,
                )  # fmt: skip
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.script(writer, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def backend(script: Script) -> AsyncIterator[Backend]:
    served = Backend(script)
    server = await asyncio.start_server(served._serve, "127.0.0.1", 0)
    served.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/base"
    try:
        yield served
    finally:
        server.close()


def answering(*pieces: bytes, close: bool = False) -> Script:
    """Writes `pieces` one write each, letting the loop run between them."""

    async def script(writer: asyncio.StreamWriter, request: bytes) -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        if close:
            writer.close()

    return script


def pool(timeout: float = 5.0) -> httpclient.Pool:
    return httpclient.Pool(size=4, connect_timeout=1.0, timeout=timeout, max_body=LIMIT)


async def get(client: httpclient.Pool, served: Backend, method: str = "GET") -> httpclient.Response:
    return await client.request(method, served.url, "/things/1", {"Accept": "application/json"})


def with_length(body: bytes, head: bytes = OK) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def test_an_answer_split_into_single_bytes_is_read_whole_on_a_kept_connection() -> None:
    answer = with_length(b'{"id": 1}')
    async with backend(answering(*[answer[i : i + 1] for i in range(len(answer))])) as served:
        client = pool()
        first = await get(client, served)
        second = await get(client, served)
        await client.close()

    assert (first.status, first.body) == (200, b'{"id": 1}') == (second.status, second.body)
    assert first.headers["content-type"] == "application/json"
    assert served.connections == 1


async def test_the_request_goes_out_whole_with_host_length_and_query() -> None:
    async with backend(answering(with_length(b"{}"))) as served:
        client = pool()
        await client.request(
            "POST", served.url, "/things", {"X-Key": "k"}, b'{"a": 1}', {"where": 'a=="b c"'}
        )
        await client.request("DELETE", served.url, "/things/1", {})
        await client.close()

    port = served.url.split(":")[2].split("/")[0]
    assert served.requests == [
        b"POST /base/things?where=a%3D%3D%22b+c%22 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode()
        + b"\r\nAccept-Encoding: gzip, deflate\r\nX-Key: k\r\nContent-Length: 8\r\n\r\n"
        b'{"a": 1}',
        b"DELETE /base/things/1 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode()
        + b"\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
    ]  # fmt: skip


async def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    async with backend(answering(with_length(b"{}"))) as served:
        client = pool()
        with pytest.raises(ValueError):
            await client.request("GET", served.url, "/", {"X-Id": "a\r\nX-Evil: 1"})
        await client.close()

    assert served.requests == []


async def test_chunks_with_extensions_and_trailers_are_joined() -> None:
    chunked = OK + b"Transfer-Encoding: chunked\r\n\r\n"
    pieces = (chunked, b'4;ext=1\r\n{"id\r\n', b'5\r\n": 1}\r\n0\r\nX-Trailer: t\r\n\r\n')
    async with backend(answering(*pieces)) as served:
        client = pool()
        answer = await get(client, served)
        again = await get(client, served)
        await client.close()

    assert answer.body == b'{"id": 1}' == again.body
    assert served.connections == 1


async def test_an_http_1_0_answer_without_length_is_read_to_the_close() -> None:
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
    async with backend(answering(head, b'{"id"', b": 1}", close=True)) as served:
        client = pool()
        first = await get(client, served)
        second = await get(client, served)
        await client.close()

    assert first.body == b'{"id": 1}' == second.body
    assert served.connections == 2


async def test_interim_answers_are_skipped_and_an_empty_204_keeps_the_connection() -> None:
    pieces = (b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")
    async with backend(answering(*pieces)) as served:
        client = pool()
        first = await get(client, served, "DELETE")
        second = await get(client, served, "DELETE")
        await client.close()

    assert (first.status, first.body, second.status) == (204, b"", 204)
    assert served.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            OK + b"X-Big: " + b"a" * (httpclient.MAX_HEAD + 1) + b"\r\n\r\n", id="huge-head"
        ),
        pytest.param(OK + b"X-Big: " + b"a" * (httpclient.MAX_HEAD + 1), id="endless-head"),
        pytest.param(b"SPDY/3 200 OK\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 2x0 OK\r\n\r\n", id="bad-status"),
        pytest.param(OK + b"Bad Name: x\r\n\r\n", id="space-in-name"),
        pytest.param(OK + b"Content-Length: 1x\r\n\r\n", id="bad-length"),
        pytest.param(OK + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", id="two-lengths"),
        pytest.param(OK + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", id="length-twice"),
        pytest.param(OK + b"X-A: 1\r\n folded\r\n\r\n", id="folded-header"),
        pytest.param(OK + b"X-A: 1\rX-B: 2\r\n\r\n", id="bare-cr"),
        pytest.param(OK + b"X-A: 1\0\r\n\r\n", id="nul-in-value"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="four-digit-status"),
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", id="bare-lf"),
        pytest.param(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", id="http-2-line"),
        pytest.param(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", id="http-1-2-line"),
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", id="upgrade"),
        pytest.param(
            OK + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="length-and-chunks",
        ),
        pytest.param(OK + b"Transfer-Encoding: gzip\r\n\r\n", id="unknown-coding"),
        pytest.param(OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk-size"),
        pytest.param(OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", id="long-chunk"),
        pytest.param(OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, id="endless-size"),
        pytest.param(OK + b"Content-Length: 100\r\n\r\n" + b"x" * 10, id="closed-mid-body"),
        pytest.param(b"", id="closed-before-answer"),
    ],
)
async def test_an_answer_that_breaks_http_is_a_broken_call(answer: bytes) -> None:
    async with backend(answering(answer, close=True)) as served:
        client = pool()
        with pytest.raises(httpclient.Broken):
            await get(client, served, "POST")
        await client.close()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(OK + b"Content-Length: %d\r\n\r\n" % (LIMIT + 1), id="declared"),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (LIMIT + 1), id="one-huge-chunk"
        ),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n" + (b"1000\r\n" + b"x" * 4096 + b"\r\n") * 17,
            id="many-chunks",
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (LIMIT + 1), id="close-delimited"),
        pytest.param(
            with_length(gzip.compress(b"\0" * (64 * LIMIT)), OK + b"Content-Encoding: gzip\r\n"),
            id="gzip-bomb",
        ),
        pytest.param(
            with_length(zlib.compress(b"\0" * (64 * LIMIT)), OK + b"Content-Encoding: deflate\r\n"),
            id="deflate-bomb",
        ),
    ],
)
async def test_an_answer_past_the_limit_is_too_large(answer: bytes) -> None:
    async with backend(answering(answer)) as served:
        client = pool()
        with pytest.raises(httpclient.TooLarge):
            await get(client, served)
        await client.close()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(b'{"id": 1}', mtime=0)),
        ("deflate", zlib.compress(b'{"id": 1}')),
        ("deflate", zlib.compress(b'{"id": 1}')[2:-4]),  # raw deflate, no zlib wrapper
    ],
    # Named, not shown: every worker must collect the same test ids.
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_compressed_answers_are_decoded(encoding: str, body: bytes) -> None:
    head = OK + f"Content-Encoding: {encoding}\r\n".encode()
    async with backend(answering(with_length(body, head))) as served:
        client = pool()
        answer = await get(client, served)
        await client.close()

    assert answer.body == b'{"id": 1}'


@pytest.mark.parametrize(
    "body", [b"\x1f\x8b\x08\x00garbage", gzip.compress(b'{"id": 1}')[:-6]], ids=["junk", "cut"]
)
async def test_a_corrupt_compressed_answer_is_corrupt(body: bytes) -> None:
    head = OK + b"Content-Encoding: gzip\r\n"
    async with backend(answering(with_length(body, head))) as served:
        client = pool()
        with pytest.raises(httpclient.Corrupt):
            await get(client, served)
        await client.close()


async def test_a_backend_that_stalls_mid_answer_times_out() -> None:
    stalled = asyncio.Event()

    async def slowloris(writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(OK[:10])
        await stalled.wait()  # never set: the client's deadline ends it

    async with backend(slowloris) as served:
        client = pool(timeout=0.2)
        with pytest.raises(httpclient.TimedOut):
            await get(client, served)
        await client.close()


async def test_no_listener_is_a_connect_failure_that_sent_nothing() -> None:
    async with backend(answering()) as served:
        url = served.url
    client = pool()
    with pytest.raises(httpclient.ConnectFailed) as failure:
        await client.request("GET", url, "/", {})
    assert not failure.value.timed_out


def hanging_up_on_each_second_request() -> Script:
    """Answers a connection's first request; closes it on reading the second."""
    seen: dict[int, int] = {}

    async def script(writer: asyncio.StreamWriter, request: bytes) -> None:
        seen[id(writer)] = seen.get(id(writer), 0) + 1
        if seen[id(writer)] == 2:
            writer.close()
        else:
            writer.write(with_length(b"{}"))

    return script


async def test_a_kept_connection_the_backend_hung_up_on_is_replaced_for_a_get_only() -> None:
    async with backend(hanging_up_on_each_second_request()) as served:
        client = pool()
        await get(client, served)
        retried = await get(client, served)  # hung up on; sent again on a new connection
        with pytest.raises(httpclient.Broken):
            await get(client, served, "POST")  # may have been acted on: never sent twice
        await client.close()

    assert retried.status == 200
    assert [r.split(b" ")[0] for r in served.requests] == [b"GET", b"GET", b"GET", b"POST"]
    assert served.connections == 2


def answers(*scripted: bytes) -> Script:
    """Each request gets the next of `scripted` in one write (the last one from then on)."""
    left = list(scripted)

    async def script(writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(left.pop(0) if len(left) > 1 else left[0])

    return script


async def test_a_head_answer_has_no_body_and_its_connection_serves_the_next_call() -> None:
    head = OK + b"Content-Length: 9\r\n\r\n"  # what a GET would have had
    async with backend(answers(head, with_length(b'{"id": 1}'))) as served:
        client = pool()
        first = await get(client, served, "HEAD")
        second = await get(client, served)
        await client.close()

    assert (first.status, first.body, first.headers["content-length"]) == (200, b"", "9")
    assert second.body == b'{"id": 1}'
    assert served.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(with_length(b"{}") + b"HTTP/1.1 200 OK\r\n", id="surplus-bytes"),
        pytest.param(with_length(b"{}") + b"x", id="surplus-junk"),
        pytest.param(with_length(b"{}", OK + b"Connection: keep-alive, close\r\n"), id="close"),
        pytest.param(
            with_length(b"{}", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"), id="http-1-0"
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n{}", id="body-after-204"),
    ],
)
async def test_a_connection_is_not_kept_when_its_answer_says_close_or_runs_over(
    answer: bytes,
) -> None:
    async with backend(answering(answer)) as served:
        client = pool()
        first = await get(client, served)
        second = await get(client, served)
        await client.close()

    assert first.status == second.status and first.body == second.body
    assert served.connections == 2


async def test_header_values_lose_their_trailing_spaces_and_trailers_stay_out() -> None:
    chunked = OK + b"Transfer-Encoding: chunked\r\nX-Note:  a b \t\r\n\r\n"
    async with backend(answering(chunked + b"2\r\n{}\r\n0\r\nX-Late: 1\r\n\r\n")) as served:
        client = pool()
        answer = await get(client, served)
        await client.close()

    assert (answer.body, answer.headers["x-note"]) == (b"{}", "a b")
    assert "x-late" not in answer.headers


CHUNK_OF_TWO = OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"


async def refused_before_the_deadline(
    rest: bytes, step: int, error: type[httpclient.WireError]
) -> None:
    """A chunk of two bytes, then `rest` in writes of `step` bytes, then a stall that only
    the client's own refusal ends (its deadline is far)."""
    stalled = asyncio.Event()

    async def script(writer: asyncio.StreamWriter, request: bytes) -> None:
        pieces = [rest[i : i + step] for i in range(0, len(rest), step)]
        await answering(CHUNK_OF_TWO, *pieces)(writer, request)
        await stalled.wait()  # never set

    async with backend(script) as served:
        client = pool(timeout=30.0)
        with pytest.raises(error):
            await get(client, served)
        await client.close()


async def test_a_chunk_declared_past_the_limit_in_single_bytes_is_too_large_at_once() -> None:
    await refused_before_the_deadline(b"%x;ext=1\r\n" % LIMIT, 1, httpclient.TooLarge)


def _digit_answers(digit: bytes) -> list[bytes]:
    chunked = OK + b"Transfer-Encoding: chunked\r\n\r\n"
    return [
        b"HTTP/1.1 2" + digit + b"0 OK\r\nContent-Length: 0\r\n\r\n",
        OK + b"Content-Length: 1" + digit + b"\r\n\r\n" + b"x" * 20,
        chunked + b"1" + digit + b"\r\n" + b"x" * 40 + b"\r\n0\r\n\r\n",
    ]


@settings(max_examples=40, deadline=None)
@given(digit=st.sampled_from(NOT_ASCII_DIGITS), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_a_status_length_or_chunk_size_with_a_digit_that_is_not_ascii_is_broken(
    digit: str, encoding: str
) -> None:
    raw = digit.encode(encoding, errors="ignore") or digit.encode()

    async def calls() -> None:
        async with backend(answering()) as served:
            for answer in _digit_answers(raw):
                served.script = answering(answer, close=True)
                client = pool()
                with pytest.raises(httpclient.Broken):
                    await get(client, served)
                await client.close()

    asyncio.run(calls())


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"1;ext=" + b"e" * (8 * httpclient.MAX_HEAD), id="endless-extension"),
        pytest.param(b"0\r\nX-Late: " + b"t" * (8 * httpclient.MAX_HEAD), id="endless-trailer"),
        pytest.param(b"0\r\n" + b"X-Late: t\r\n" * httpclient.MAX_HEAD, id="endless-trailers"),
    ],
)
async def test_chunk_framing_that_does_not_end_is_broken_before_the_deadline(
    framing: bytes,
) -> None:
    await refused_before_the_deadline(framing, 4096, httpclient.Broken)
