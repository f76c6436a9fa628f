"""Record fixtures/recorded/ from the real Ollama: one JSON file per case of cases.py with the
status, content type and parsed body of the real answer (store paths replaced by <store>).
    OLLAMA_URL=http://127.0.0.1:PORT python tests/real/record.py
(tests/real/run.sh --record starts the server and runs this.) The recordings are what
test_fake_conformance.py holds the fake Ollama to, and what it checks the live server still
answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from cases import CASES, answer, ollama_url, recorded_path, send

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    out = ROOT / "fixtures" / "recorded"
    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=ollama_url(), timeout=60) as client:
        send(client, "chat-load")  # /api/ps lists a loaded model
        for case in CASES:
            method, path, body = CASES[case]
            record = {"request": {"method": method, "path": path, "body": body}, **answer(send(client, case))}
            recorded_path(ROOT, case).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
            print(f"recorded {case}: {record['status']} {record['content_type']}")


if __name__ == "__main__":
    main()
