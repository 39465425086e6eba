"""A local HTTP server on 127.0.0.1 that answers like OpenAI, Anthropic and Gemini.

Base URLs carry a scenario: `http://127.0.0.1:PORT/<scenario>` (+ `/v1` for OpenAI). The
scenario picks the usage shape and behaviour:
  plain       usage with no cache
  cached      cache reads (and, for Anthropic, 5-minute and 1-hour cache writes)
  reasoning   reasoning / thinking tokens
  tools       a tool call
  nousage     a stream without usage
  midstream   an error after the first text
  slow        0.15 s before the headers and 0.15 s before the first token
  refused     a text chunk with a NUL character
  notfound    HTTP 404 with an error body
  judge       OpenAI chat only: the answer text is `server.judge_answer(body)` (a grader's
              JSON score by default)
  outage      HTTP 503 with an error body, every time
  flaky       HTTP 500 for the first `server.flaky_failures` requests, then as `judge`
Answers are realistic JSON and server-sent events, each response with its own id.
USAGE[provider][scenario] is the raw usage JSON the provider reports (what genai-prices
reads in the tests). Every request body is kept in `server.requests`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEXT = ["Row ", "level ", "security ", "is ..."]
JUDGE_ANSWER = '{"score": 4, "reason": "clear and correct"}'
DELAY = 0.15

OPENAI_CHAT_USAGE = {
    "plain": {"prompt_tokens": 812, "completion_tokens": 356, "total_tokens": 1168},
    "cached": {
        "prompt_tokens": 2400,
        "completion_tokens": 120,
        "total_tokens": 2520,
        "prompt_tokens_details": {"cached_tokens": 2048, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "reasoning": {
        "prompt_tokens": 300,
        "completion_tokens": 900,
        "total_tokens": 1200,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 640},
    },
}
OPENAI_RESPONSES_USAGE = {
    "plain": {"input_tokens": 500, "output_tokens": 80, "total_tokens": 580},
    "cached": {
        "input_tokens": 3000,
        "output_tokens": 200,
        "total_tokens": 3200,
        "input_tokens_details": {"cached_tokens": 2560},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
    "reasoning": {
        "input_tokens": 400,
        "output_tokens": 1500,
        "total_tokens": 1900,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 1200},
    },
}
ANTHROPIC_USAGE = {
    "plain": {"input_tokens": 812, "output_tokens": 356},
    "cached": {
        "input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 1000,
        "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
        "output_tokens": 50,
    },
    "cached5m": {
        "input_tokens": 20,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 4000,
        "cache_creation": {"ephemeral_5m_input_tokens": 4000, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 300,
    },
    "reasoning": {"input_tokens": 200, "output_tokens": 1800},  # thinking counts as output
}
GEMINI_USAGE = {
    "plain": {"promptTokenCount": 700, "candidatesTokenCount": 250, "totalTokenCount": 950},
    "cached": {
        "promptTokenCount": 5000,
        "cachedContentTokenCount": 4096,
        "candidatesTokenCount": 100,
        "totalTokenCount": 5100,
    },
    "reasoning": {
        "promptTokenCount": 120,
        "candidatesTokenCount": 60,
        "thoughtsTokenCount": 900,
        "totalTokenCount": 1080,
    },
}
USAGE = {
    "openai-chat": OPENAI_CHAT_USAGE,
    "openai-responses": OPENAI_RESPONSES_USAGE,
    "anthropic": ANTHROPIC_USAGE,
    "google": GEMINI_USAGE,
}


def usage_for(provider: str, scenario: str) -> dict[str, Any] | None:
    """The raw usage JSON the server reports for this provider and scenario (None: none)."""
    if scenario == "nousage":
        return None
    table = USAGE[provider]
    return table.get(scenario, table["plain"])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProviderServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle's algorithm
        # and delayed ACKs add ~40 ms to every keep-alive JSON answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        parts = self.path.split("?")[0].strip("/").split("/")
        scenario, rest = parts[0], "/".join(parts[1:])
        self.server.requests.append({"path": self.path, "body": body, "scenario": scenario})
        if scenario == "slow":
            time.sleep(DELAY)
        if scenario == "notfound":
            self._json({"error": {"message": "model not found", "type": "not_found_error"}}, 404)
        elif scenario == "outage" or (scenario == "flaky" and self.server.take_failure()):
            status = 503 if scenario == "outage" else 500
            self._json({"error": {"message": "overloaded", "type": "server_error"}}, status)
        elif rest.endswith("chat/completions"):
            self._openai_chat(scenario, body)
        elif rest.endswith("responses"):
            self._openai_responses(scenario, body)
        elif rest.endswith("messages"):
            self._anthropic(scenario, body)
        elif ":streamGenerateContent" in rest or ":generateContent" in rest:
            self._gemini(scenario, rest)
        else:
            self._json({"error": {"message": f"unknown path {self.path}"}}, status=404)

    def _serial(self) -> int:
        """This request's number: response ids are unique, as a provider's are."""
        return len(self.server.requests)

    # ------------------------------------------------------------ transport

    def _json(self, payload: dict, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]], scenario: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, (event, data) in enumerate(events):
            if scenario == "slow" and i == 1:
                time.sleep(DELAY)
            text = data if isinstance(data, str) else json.dumps(data)
            block = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
            raw = block.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    # ------------------------------------------------------------ OpenAI chat

    def _openai_chat(self, scenario: str, body: dict) -> None:
        model = body.get("model", "gpt-4o")
        usage = usage_for("openai-chat", scenario)
        texts = _texts(scenario)
        if scenario in ("judge", "flaky"):
            texts = [self.server.judge_answer(body)]
        base = {"id": f"chatcmpl-{self._serial()}", "created": 1764460800, "model": model}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
            if scenario == "tools":
                message["tool_calls"] = [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            self._json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any]] = []
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        events.append((None, {**chunk, "choices": [first]}))
        for i, text in enumerate(texts):
            if scenario == "midstream" and i == 1:
                events.append(
                    (None, {"error": {"message": "upstream overloaded", "type": "server_error"}})
                )
                break
            delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
            events.append((None, {**chunk, "choices": [delta]}))
        if scenario == "tools":
            for j, piece in enumerate(['{"city": ', '"Paris"}']):
                call = {"index": 0, "function": {"arguments": piece}}
                if j == 0:
                    call.update(id="call_1", type="function")
                    call["function"]["name"] = "get_weather"
                delta = {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                events.append((None, {**chunk, "choices": [delta]}))
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        events.append((None, {**chunk, "choices": [last]}))
        if usage is not None and (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**chunk, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        self._sse(events, scenario)

    # ------------------------------------------------------------ OpenAI responses

    def _openai_responses(self, scenario: str, body: dict) -> None:
        model = body.get("model", "gpt-4o")
        usage = usage_for("openai-responses", scenario)
        texts = _texts(scenario)
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "".join(texts), "annotations": []}],
        }
        response = {
            "id": f"resp_{self._serial()}",
            "object": "response",
            "created_at": 1764460800,
            "model": model,
            "status": "completed",
            "output": [message],
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if not body.get("stream"):
            self._json(response)
            return
        events: list[tuple[str | None, Any]] = []
        created = {**response, "status": "in_progress", "output": [], "usage": None}
        events.append(
            (
                "response.created",
                {"type": "response.created", "response": created, "sequence_number": 0},
            )
        )
        for i, text in enumerate(texts):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": text,
                        "logprobs": [],
                        "sequence_number": i + 1,
                    },
                )
            )
        events.append(
            (
                "response.completed",
                {"type": "response.completed", "response": response, "sequence_number": 99},
            )
        )
        self._sse(events, scenario)

    # ------------------------------------------------------------ Anthropic

    def _anthropic(self, scenario: str, body: dict) -> None:
        model = body.get("model", "claude-sonnet-4-5")
        usage = usage_for("anthropic", scenario) or {"input_tokens": 0, "output_tokens": 0}
        texts = _texts(scenario)
        content: list[dict[str, Any]] = []
        if scenario == "reasoning":
            content.append({"type": "thinking", "thinking": "Let me think.", "signature": "s"})
        content.append({"type": "text", "text": "".join(texts)})
        if scenario == "tools":
            content.append(
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            )
        message = {
            "id": f"msg_{self._serial()}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self._json(message)
            return
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        start_usage["output_tokens"] = 1
        start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start}),
        ]
        index = 0
        if scenario == "reasoning":
            events += [
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "thinking_delta", "thinking": "Let me think."},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "signature_delta", "signature": "s"},
                    },
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ]
            index = 1
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        for i, text in enumerate(texts):
            if scenario == "midstream" and i == 1:
                events.append(
                    (
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    )
                )
                self._sse(events, scenario)
                return
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        if scenario == "tools":
            index += 1
            events += [
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {},
                        },
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
                    },
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": index}),
            ]
        # The delta's usage repeats the cache keys as null (as Anthropic sends them).
        delta_usage = {
            "input_tokens": None,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "output_tokens": usage["output_tokens"],
        }
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": delta_usage,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        self._sse(events, scenario)

    # ------------------------------------------------------------ Gemini

    def _gemini(self, scenario: str, rest: str) -> None:
        model = rest.split("models/")[1].split(":")[0]
        usage = usage_for("google", scenario)
        texts = _texts(scenario)

        def response(parts: list[dict], with_usage: bool, finish: bool) -> dict:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = "STOP"
            out: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": model,
                "responseId": "resp-g1",
            }
            if with_usage and usage is not None:
                out["usageMetadata"] = usage
            return out

        if ":generateContent" in rest:
            parts = [{"text": "".join(texts)}]
            if scenario == "reasoning":
                parts.insert(0, {"text": "thinking...", "thought": True})
            self._json(response(parts, True, True))
            return
        events: list[tuple[str | None, Any]] = []
        if scenario == "reasoning":
            events.append(
                (None, response([{"text": "thinking...", "thought": True}], False, False))
            )
        for i, text in enumerate(texts):
            last = i == len(texts) - 1
            events.append((None, response([{"text": text}], True, last)))
        if scenario == "tools":
            call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
            events.append((None, response([call], True, True)))
        self._sse(events, scenario)


def _texts(scenario: str) -> list[str]:
    if scenario == "refused":
        return ["Row ", "lev\x00el ", "security"]
    return list(TEXT)


class ProviderServer(ThreadingHTTPServer):
    """The server; `url` is http://127.0.0.1:PORT. Start with `start()`, stop with
    `shutdown()`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.judge_answer: Callable[[dict], str] = lambda body: JUDGE_ANSWER
        self.flaky_failures = 0
        self._failures_lock = threading.Lock()

    def take_failure(self) -> bool:
        """True (and one fewer left) while `flaky_failures` remain."""
        with self._failures_lock:
            if self.flaky_failures > 0:
                self.flaky_failures -= 1
                return True
            return False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client closing its connection mid-answer is normal here

    def start(self) -> ProviderServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self
