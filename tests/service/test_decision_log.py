"""The decision log on its own: group commit, torn last lines, write failures."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import orjson
import pytest

from cx_pipelines.service.decision_log import DecisionLogError, DurableLog, read_decision_log
from cx_pipelines.service.settings import ServiceSettings, SettingsError


def test_concurrent_appends_are_all_durable_and_whole(tmp_path):
    seen: list = []
    log = DurableLog(tmp_path, after_write=seen.extend)

    def writer(number: int) -> None:
        for index in range(50):
            line = orjson.dumps({"decision_id": f"{number}-{index}"}) + b"\n"
            log.append_blocking([line], [f"{number}-{index}"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    ids = [entry["decision_id"] for entry in read_decision_log(tmp_path)]
    assert sorted(ids) == sorted(f"{n}-{i}" for n in range(4) for i in range(50))
    assert sorted(seen) == sorted(ids)  # contacts handed on after each durable group


def test_a_torn_last_line_is_skipped(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"decision_id": "1"}\n{"decision_id": "2"}\n{"decis')
    assert [e["decision_id"] for e in read_decision_log(tmp_path)] == ["1", "2"]


def test_a_failed_write_is_an_error_not_an_acknowledgement(tmp_path):
    log = DurableLog(tmp_path)
    log.append_blocking([b'{"decision_id": "ok"}\n'])
    os.close(log._descriptor)  # the disk goes away under the writer
    log._descriptor = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(DecisionLogError, match="write failed"):
        log.append_blocking([b'{"decision_id": "lost"}\n'])
    log.close()
    assert [e["decision_id"] for e in read_decision_log(tmp_path)] == ["ok"]


@pytest.mark.parametrize("sync", ["write", "fsync"])
def test_each_sync_mode_acknowledges_written_lines_and_fsyncs_them(tmp_path, sync):
    log = DurableLog(tmp_path, sync=sync, fsync_ms=5)
    before = time.monotonic()
    log.append_blocking([b'{"decision_id": "a"}\n', b'{"decision_id": "b"}\n'])
    # acknowledged: the kernel has the lines (what a kill -9 of this process cannot lose)
    assert [e["decision_id"] for e in read_decision_log(tmp_path)] == ["a", "b"]
    if sync == "fsync":
        assert log.synced_at >= before  # fsync'd before the acknowledgement
    deadline = time.monotonic() + 10
    while log.synced_at < before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.synced_at >= before  # "write": the syncer thread fsync'd it soon after
    log.close()
    assert [e["decision_id"] for e in read_decision_log(tmp_path)] == ["a", "b"]


def test_an_unknown_sync_mode_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'sometimes' is not one of write, fsync"):
        DurableLog(tmp_path, sync="sometimes")
    monkeypatch.setenv("CX_DECISION_LOG_SYNC", "never")
    with pytest.raises(SettingsError, match="CX_DECISION_LOG_SYNC='never'"):
        ServiceSettings.from_environment()


@pytest.mark.parametrize("sync", ["write", "fsync"])
def test_concurrent_async_appends_are_written_and_handed_on(tmp_path, sync):
    groups: list[list] = []
    log = DurableLog(tmp_path, after_write=groups.append, sync=sync)

    async def decide(number: int) -> None:
        await log.append([orjson.dumps({"decision_id": str(number)}) + b"\n"], [number])

    async def main() -> None:
        await asyncio.gather(*(decide(n) for n in range(40)))

    asyncio.run(main())
    # acknowledged means written: every line is in the file before the log is closed
    assert sorted(int(e["decision_id"]) for e in read_decision_log(tmp_path)) == list(range(40))
    assert sorted(p for group in groups for p in group) == list(range(40))
    if sync == "write":
        assert len(groups) == 40  # each request writes its own line, answered at once
    log.close()


def test_a_failed_async_write_is_an_error_not_an_acknowledgement(tmp_path):
    log = DurableLog(tmp_path, sync="write")
    os.close(log._descriptor)
    log._descriptor = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(DecisionLogError, match="write failed"):
        asyncio.run(log.append([b'{"decision_id": "lost"}\n']))
    log.close()
    assert list(read_decision_log(tmp_path)) == []
