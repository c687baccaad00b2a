"""Reading the source topics from the beginning (for `rebuild`), straight with aiokafka.

A group-less consumer reads every partition from its first offset up to the end offsets measured at
the start; then a consumer with the service's group id commits those end offsets, so the service
resumes exactly where the rebuild stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from petportal_runtime.broker import parse_record
from petportal_runtime.logging import get_logger
from petportal_schemas import Envelope, Event

log = get_logger(__name__)


@dataclass
class ReplayStats:
    records: int = 0
    malformed: int = 0


class TopicReplayer:
    def __init__(
        self,
        bootstrap_servers: str,
        source_topics: Sequence[str],
        event_types: Collection[str],
        *,
        group_id: str,
        client_id: str = "petportal-todo-rebuild",
        max_records: int = 1000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topics = list(source_topics)
        self._event_types = set(event_types)
        self._group_id = group_id
        self._client_id = client_id
        self._max_records = max_records
        self._session_timeout_ms = session_timeout_ms
        self.end_offsets: dict[TopicPartition, int] = {}
        self.stats = ReplayStats()

    async def batches(self) -> AsyncIterator[list[tuple[Envelope, Event]]]:
        """Every event from the beginning until the end offsets measured at the start are reached and
        a poll comes back empty."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self._client_id,
        )
        await consumer.start()
        try:
            await consumer.topics()  # refresh metadata
            partitions = [
                TopicPartition(topic, p)
                for topic in self._topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            measured = await consumer.end_offsets(partitions)
            while True:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=self._max_records)
                batch: list[tuple[Envelope, Event]] = []
                for records in fetched.values():
                    for record in records:
                        self._parse_into(batch, record)
                if batch:
                    yield batch
                behind = [tp for tp in partitions if await consumer.position(tp) < measured[tp]]
                if not fetched and not behind:
                    break
            # Where the replay actually stopped (past the measured ends if events kept coming, and
            # right even on a broker whose reported end offsets lag, as the embedded Tansu's do).
            self.end_offsets = {tp: await consumer.position(tp) for tp in partitions}
        finally:
            await consumer.stop()

    def _parse_into(self, batch: list[tuple[Envelope, Event]], record: ConsumerRecord[Any, Any]) -> None:
        self.stats.records += 1
        try:
            parsed = parse_record(record, self._event_types)
        except ValueError:
            # Dead-lettered when it was first consumed; a rebuild does not dead-letter it again.
            self.stats.malformed += 1
            return
        if parsed is not None:
            batch.append(parsed)

    async def commit_group_offsets(self, join_timeout: float = 60) -> None:
        """Make the service's consumer group resume at the offsets the replay reached.

        The committer joins the group as its only member (the service is stopped) and commits the
        end offsets for every partition: a commit from outside the group (manual assignment,
        generation -1) is refused by some brokers, Tansu among them.
        """
        if not self.end_offsets:
            return
        committer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            client_id=self._client_id,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(300, self._session_timeout_ms // 4),
        )
        await committer.start()
        try:
            committer.subscribe(topics=self._topics)
            async with asyncio.timeout(join_timeout):
                while set(committer.assignment()) != set(self.end_offsets):
                    # Drives the group join; fetched records are ignored (explicit offsets are committed).
                    await committer.getmany(timeout_ms=200, max_records=1)
            await committer.commit(dict(self.end_offsets))
            log.info(
                "consumer group offsets committed", group_id=self._group_id, partitions=len(self.end_offsets)
            )
        except TimeoutError:
            raise RuntimeError(
                f"could not take every partition of consumer group {self._group_id} within {join_timeout} s: "
                "is the service still running?"
            ) from None
        finally:
            await committer.stop()
