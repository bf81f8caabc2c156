"""A scripted OpenAI-compatible model: ``/v1/chat/completions`` on 127.0.0.1 in a thread.

Each request is kept (``requests``); the answer is the next of ``script`` (the last one
again once the script runs out). An entry is a reply text, a whole response body (a
dict: tool calls, say), or an HTTP status to answer with instead (a model that is down).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ChatModel:
    """The model's address, what it was asked, and what it answers next."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[str | int | dict[str, Any]] = field(default_factory=list)
    tokens: tuple[int, int] = (100, 20)  # prompt and completion tokens per answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, *answers: str | int | dict[str, Any]) -> None:
        """Answer these next, in order (texts, or HTTP statuses)."""
        with self.lock:
            self.script[:] = list(answers)

    def next_answer(self, request: dict[str, Any]) -> str | int | dict[str, Any]:
        with self.lock:
            self.requests.append(request)
            if not self.script:
                return 503
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def completion(text: str, tokens: tuple[int, int]) -> dict[str, Any]:
    """A /chat/completions response body answering ``text``."""
    return {
        "model": "scripted-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]},
    }


@contextmanager
def chat_model() -> Iterator[ChatModel]:
    """Serve a scripted model until the block ends."""
    model = ChatModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            answer = model.next_answer(json.loads(self.rfile.read(length)))
            if isinstance(answer, int):
                status, data = answer, b'{"error": {"message": "scripted failure"}}'
            elif isinstance(answer, dict):
                status, data = 200, json.dumps(answer).encode()
            else:
                status, data = 200, json.dumps(completion(answer, model.tokens)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    model.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
