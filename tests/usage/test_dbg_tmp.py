import asyncio, logging, time
import pytest
from tests.usage.test_request_log import entry, writer_for, rename_table
pytestmark = pytest.mark.anyio

async def test_dbg(engine, caplog):
    w = writer_for(engine, batch_size=1)
    await rename_table(engine, "request_logs", "request_logs_away")
    w.start()
    with caplog.at_level(logging.ERROR, logger="vaultgate.usage"):
        w.record(entry(1))
        for i in range(30):
            await asyncio.sleep(0.1)
        print("records", len(caplog.records), repr(caplog.text[:80]), w.pending, w._task, logging.getLogger("vaultgate.usage").getEffectiveLevel(), logging.getLogger("vaultgate").propagate)
    await rename_table(engine, "request_logs_away", "request_logs")
    await w.close()
