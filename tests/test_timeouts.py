"""localiot.timeouts.within: a cancellation that arrives as the awaited
operation completes is not lost (Python 3.11's asyncio.wait_for loses it, and
a cancelled background loop then never ends: stopping a PostgreSQL node hung)."""

from __future__ import annotations

import asyncio

import pytest

from localiot.timeouts import within


async def _cancelled_as_it_completes(wait) -> str:
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    async def background_loop():
        await wait(done, 10)
        await asyncio.sleep(3600)  # the loop's next round: only reached if the cancel was lost
        return "carried on"

    task = loop.create_task(background_loop())
    await asyncio.sleep(0)  # the task now waits on `done`
    done.set_result(None)
    task.cancel()  # arrives in the same loop iteration as the completion
    try:
        return await asyncio.wait_for(task, 2)
    except asyncio.CancelledError:
        return "cancelled"
    except TimeoutError:
        return "carried on"


def test_within_keeps_a_cancellation_that_races_completion():
    assert asyncio.run(_cancelled_as_it_completes(within)) == "cancelled"


def test_within_times_out():
    async def main():
        with pytest.raises(TimeoutError):
            await within(asyncio.sleep(5), 0.05)
        assert await within(asyncio.sleep(0, "ok"), 1) == "ok"
        assert await within(asyncio.sleep(0, "no limit"), None) == "no limit"

    asyncio.run(main())
