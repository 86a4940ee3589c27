"""Finished jobs remembered on the PC, so a job delivered again is answered, not redone.

A PIN change that succeeded cannot be repeated with the old PIN; if the link dropped before
the service heard about it, the redelivered job gets the recorded outcome back instead.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from ukey_bridge.outcomes import JobReport
from ukey_bridge.protocol import Outcome

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class JobJournal:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _path(self, job_id: str) -> Path:
        if not _SAFE_ID.match(job_id):
            raise ValueError("job ids are plain tokens")
        return self._directory / f"{job_id}.json"

    def get(self, job_id: str) -> JobReport | None:
        path = self._path(job_id)
        try:
            body = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        return JobReport(
            outcome=Outcome(body["outcome"]),
            message=str(body["message"]),
            tries_left=body.get("tries_left"),
            final_try=bool(body.get("final_try", False)),
            data=dict(body.get("data", {})),
        )

    def record(self, job_id: str, report: JobReport) -> None:
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(job_id)
        body = asdict(report)
        body["outcome"] = report.outcome.value
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle, ensure_ascii=False)
        os.replace(temporary, path)
