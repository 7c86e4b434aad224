import asyncio, logging, time
import pytest
from tests.usage.test_request_log import entry, writer_for, rename_table, wait_until
pytestmark = pytest.mark.anyio

async def test_dbg(engine, caplog):
    writer = writer_for(engine, batch_size=1)
    await rename_table(engine, "request_logs", "request_logs_away")
    writer.start()
    with caplog.at_level(logging.ERROR, logger="vaultgate.usage"):
        writer.record(entry(1))
        t0 = time.monotonic()
        def cond():
            if time.monotonic() - t0 > 5:
                print("stuck", writer.pending, writer._task, len(caplog.records), caplog.handler, logging.getLogger().handlers)
                return True
            return "request log write failed" in caplog.text
        await wait_until(cond)
        print("records", len(caplog.records))
    await rename_table(engine, "request_logs_away", "request_logs")
    await writer.close()
