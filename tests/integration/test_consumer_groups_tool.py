"""kraft-consumer-groups on real nodes: Kafka's lines for --list, --describe, --reset-offsets and
--delete; a reset --to-earliest --execute makes the group replay from offset 0; a group with
an active member is neither reset nor deleted; the admin client rides out the kill -9 of a
group's coordinator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from client.admin import Admin, TopicPartition
from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from tests.integration.conftest import running_cluster

TOPIC = "events"
PARTITIONS = 2
RECORDS_PER_PARTITION = 5
TOOL = "client.tools.consumer_groups"


@pytest.fixture(scope="module")
def groups_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Fewer offsets partitions than Kafka's 50 keep the module quick; the rule is the same.
    with running_cluster(
        tmp_path_factory.mktemp("groups-tool"), **{"offsets.topic.num.partitions": "5"}
    ) as handle:
        node = handle.nodes[0]
        status, answer = node.http(
            "POST",
            "/v1/topics",
            {"name": TOPIC, "partitions": PARTITIONS, "replication_factor": 3},
        )
        assert status == 201, answer
        for p in range(PARTITIONS):
            records = [{"value": f"p{p}-{i}"} for i in range(RECORDS_PER_PARTITION)]
            answer = follow(
                node, "POST", f"/v1/topics/{TOPIC}/partitions/{p}/records", {"records": records}
            )
            assert len(answer["offsets"]) == RECORDS_PER_PARTITION
        yield handle


def follow(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    """A 2xx answer's body, following 307s (leader, coordinator) as ``curl -L`` does and
    waiting out 503s (a coordinator still loading) for up to a minute."""
    deadline = time.monotonic() + 60
    url = node.url + path
    while True:
        status, answer = http(method, url, body)
        if status == 307:
            url = answer["leader_url"].rstrip("/") + path
            continue
        if status == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            url = node.url + path
            continue
        assert 200 <= status < 300, (status, answer)
        return answer


def tool(node: NodeProcess, *args: str) -> tuple[int, str, str]:
    out = run_tool(TOOL, "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout, out.stderr


def join(node: NodeProcess, group: str) -> dict[str, Any]:
    """A member joins with epoch 0 and heartbeats until it owns every partition it is given."""
    path = f"/v1/groups/{quote(group, safe='')}/heartbeat"
    answer: dict[str, Any] = follow(
        node, "POST", path, {"member_epoch": 0, "topics": [TOPIC], "client_id": "replayer"}
    )
    answer = follow(
        node,
        "POST",
        path,
        {
            "member_id": answer["member_id"],
            "member_epoch": answer["member_epoch"],
            "owned": answer["assignment"],
        },
    )
    return answer


def leave(node: NodeProcess, group: str, member: dict[str, Any]) -> None:
    follow(
        node,
        "POST",
        f"/v1/groups/{quote(group, safe='')}/heartbeat",
        {"member_id": member["member_id"], "member_epoch": -1},
    )


def committed(node: NodeProcess, group: str) -> dict[int, int]:
    answer = follow(node, "GET", f"/v1/groups/{quote(group, safe='')}/offsets")
    return {o["partition"]: o["offset"] for o in answer["offsets"] if o["topic"] == TOPIC}


def consume(node: NodeProcess, group: str, member: dict[str, Any]) -> list[str]:
    """What a consumer does: read each assigned partition from the group's committed offset
    (earliest when none) to its end, then commit the next offset as the member."""
    start = committed(node, group)
    values: list[str] = []
    offsets = []
    for item in sorted(member["assignment"], key=lambda a: a["partition"]):
        p = item["partition"]
        answer = follow(
            node,
            "GET",
            f"/v1/topics/{TOPIC}/partitions/{p}/records?offset={start.get(p, 0)}&max_records=100",
        )
        values += [r["value"] for r in answer["records"]]
        offsets.append({"topic": TOPIC, "partition": p, "offset": answer["next_offset"]})
    follow(
        node,
        "POST",
        f"/v1/groups/{quote(group, safe='')}/offsets",
        {
            "member_id": member["member_id"],
            "member_epoch": member["member_epoch"],
            "offsets": offsets,
        },
    )
    return values


def all_values() -> list[str]:
    return [f"p{p}-{i}" for p in range(PARTITIONS) for i in range(RECORDS_PER_PARTITION)]


def state_of(node: NodeProcess, group: str) -> str:
    return str(follow(node, "GET", f"/v1/groups/{quote(group, safe='')}")["state"])


def test_reset_to_earliest_execute_replays_from_offset_0(groups_cluster: Cluster) -> None:
    node = groups_cluster.nodes[1]
    member = join(node, "replay")
    assert consume(node, "replay", member) == all_values()
    leave(node, "replay", member)
    code, out, err = tool(node, "--describe", "--group", "replay")
    assert code == 0, err
    assert "Consumer group 'replay' has no active members." in err
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows == [
        ["replay", TOPIC, str(p), "5", "5", "0", "-", "-", "-"] for p in range(PARTITIONS)
    ]

    code, out, err = tool(
        node, "--reset-offsets", "--group", "replay", "--topic", TOPIC, "--to-earliest", "--execute"
    )
    assert code == 0, err
    assert out.splitlines()[1].split() == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]
    assert [line.split() for line in out.splitlines()[2:]] == [
        ["replay", TOPIC, str(p), "0"] for p in range(PARTITIONS)
    ]
    assert committed(node, "replay") == dict.fromkeys(range(PARTITIONS), 0)

    again = join(groups_cluster.nodes[2], "replay")
    assert consume(groups_cluster.nodes[2], "replay", again) == all_values()
    leave(groups_cluster.nodes[2], "replay", again)


def test_dry_run_and_shift_change_nothing_until_executed(groups_cluster: Cluster) -> None:
    node = groups_cluster.nodes[0]
    with Admin(node.bootstrap) as admin:
        admin.alter_group_offsets("shifty", {TopicPartition(TOPIC, 0): 4})
    code, out, err = tool(
        node, "--reset-offsets", "--group", "shifty", "--topic", f"{TOPIC}:0", "--shift-by", "-3"
    )
    assert code == 0, err
    assert out.splitlines()[2].split() == ["shifty", TOPIC, "0", "1"]
    assert "WARN: No action will be performed as the --execute option is missing." in err
    assert committed(node, "shifty") == {0: 4}
    code, out, err = tool(
        node,
        "--reset-offsets",
        "--group",
        "shifty",
        "--all-topics",
        "--to-offset",
        "99",
        "--execute",
    )
    assert code == 0, err
    assert "New offset (99) is higher than latest offset for topic partition events-0." in err
    assert committed(node, "shifty") == {0: 5}


def test_a_group_with_an_active_member_is_neither_reset_nor_deleted(
    groups_cluster: Cluster,
) -> None:
    node = groups_cluster.nodes[0]
    member = join(node, "busy")
    consume(node, "busy", member)
    wait_until("busy is Stable", lambda: state_of(node, "busy") == "Stable")
    before = committed(node, "busy")

    code, _out, err = tool(
        node, "--reset-offsets", "--group", "busy", "--all-topics", "--to-earliest", "--execute"
    )
    assert code == 1
    assert (
        "Error: Assignments can only be reset if the group 'busy' is inactive, but the current "
        "state is Stable." in err
    )
    assert committed(node, "busy") == before

    code, out, err = tool(node, "--delete", "--group", "busy")
    assert code == 1
    assert "Error: Deletion of some consumer groups failed:" in err
    assert out.strip() == (
        "* Group 'busy' could not be deleted due to: java.util.concurrent.ExecutionException: "
        "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty."
    )

    code, out, err = tool(node, "--describe", "--group", "busy", "--members", "--verbose")
    assert code == 0, err
    header, row = out.splitlines()[1:3]
    assert header.split() == [
        "GROUP",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
        "ASSIGNMENT",
    ]
    assert row.split() == [
        "busy",
        member["member_id"],
        "/127.0.0.1",
        "replayer",
        str(PARTITIONS),
        f"{TOPIC}(0,1)",
    ]

    code, out, err = tool(node, "--describe", "--group", "busy", "--state")
    assert code == 0, err
    cells = out.splitlines()[2].split()
    assert cells[0] == "busy" and cells[-2:] == ["Stable", "1"]

    code, out, err = tool(node, "--list", "--state", "stable")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["GROUP", "STATE"]
    assert ["busy", "Stable"] in [line.split() for line in out.splitlines()[1:]]

    leave(node, "busy", member)
    code, out, err = tool(node, "--delete", "--group", "busy")
    assert (code, out.strip()) == (
        0,
        "Deletion of requested consumer groups ('busy') was successful.",
    )
    code, out, err = tool(node, "--describe", "--group", "busy")
    assert code == 1
    assert err.strip() == "Error: Consumer group 'busy' does not exist."


def test_admin_reads_committed_offsets_through_the_kill_of_the_coordinator(
    groups_cluster: Cluster,
) -> None:
    bootstrap = ",".join(n.bootstrap for n in groups_cluster.nodes)
    wanted = {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 2}
    with Admin(bootstrap) as admin:
        assert admin.alter_group_offsets("survivor", wanted) == wanted
        coordinator_id = admin.describe_group("survivor")["coordinator_id"]
        victim = groups_cluster.node(coordinator_id)
        victim.kill()
        try:
            # The first node asked may be the dead one, and the coordinator's partition needs a
            # new leader: the admin client retries both until it is answered.
            assert admin.list_group_offsets("survivor") == wanted
            assert admin.describe_group("survivor")["coordinator_id"] != coordinator_id
        finally:
            victim.start()


def console_consume(node: NodeProcess, group: str, *args: str) -> list[str]:
    """kraft-console-consumer in ``group`` until it has printed every record of the topic (it
    commits what it printed as it exits)."""
    out = run_tool(
        "client.tools.console_consumer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        TOPIC,
        "--group",
        group,
        "--max-messages",
        str(PARTITIONS * RECORDS_PER_PARTITION),
        *args,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.splitlines())


def test_console_consumer_group_replays_after_a_reset_to_earliest(groups_cluster: Cluster) -> None:
    node = groups_cluster.nodes[0]
    assert console_consume(node, "lab", "--from-beginning") == sorted(all_values())
    code, out, err = tool(node, "--describe", "--group", "lab")
    assert code == 0, err
    assert [line.split()[3:6] for line in out.splitlines()[2:]] == [
        [str(RECORDS_PER_PARTITION), str(RECORDS_PER_PARTITION), "0"]
    ] * PARTITIONS

    code, out, err = tool(
        node, "--reset-offsets", "--group", "lab", "--all-topics", "--to-earliest", "--execute"
    )
    assert code == 0, err
    # Without --from-beginning: the group's committed offsets (now 0) decide where it starts.
    assert console_consume(groups_cluster.nodes[1], "lab") == sorted(all_values())
