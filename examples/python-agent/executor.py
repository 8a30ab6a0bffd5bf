#!/usr/bin/env python3
"""A graph executor in Python, in the way agent platforms run them beside their web server: the web server starts one
per execution, and it reaches the browsers only through the fastify-realtime HTTP server API. Standard library only.

Each node's status goes to two rooms in one batch: `execution:<id>` (the viewers of this execution) and
`graph:<id>` (the viewers of every execution of the graph). The summary is streamed token by token; the user who
started the execution is asked, in their own room, whether to publish it, and told when the execution is over. A
viewer may cancel the execution at any time: the executor notices within one step and stops.

    REALTIME_API=http://localhost:3000/ws/api REALTIME_KEY=... GRAPH_ID=g1 EXECUTION_ID=e1 USER_ID=ada python3 executor.py

Each step prints one JSON line, for the server that started it (or a test) to follow.
"""
import json
import os
import sys
import time
import urllib.parse

from realtime_api import Api

API = Api(os.environ.get("REALTIME_API", "http://127.0.0.1:3000/ws/api"), os.environ["REALTIME_KEY"])
GRAPH = os.environ["GRAPH_ID"]
EXECUTION = os.environ["EXECUTION_ID"]
USER = os.environ["USER_ID"]
STEP = float(os.environ.get("STEP_MS", "300")) / 1000
TOKENS = int(os.environ.get("TOKENS", "60"))
ROOM = f"execution:{EXECUTION}"
RUN_QUERY = f"room={urllib.parse.quote(ROOM)}&runId={urllib.parse.quote(EXECUTION)}"
NODES = [("fetch", "Fetch sources"), ("summarize", "Summarize"), ("review", "Review")]


class Cancelled(Exception):
    pass


def say(step, **fields):
    print(json.dumps({"step": step, "execution": EXECUTION, **fields}), flush=True)


def to_both(type_, data):
    """One event to the execution's viewers and to the graph's, in one request and in order."""
    API.call("POST", "/batch", {"events": [{"room": room, "type": type_, "data": data} for room in (ROOM, f"graph:{GRAPH}")]})


def status(node_id, name, state, progress):
    to_both("node_status", {"runId": EXECUTION, "nodeId": node_id, "name": name, "status": state})
    to_both("task_update", {"taskId": EXECUTION, "runId": EXECUTION, "status": "running", "progress": progress, "message": name})


def check_cancel():
    """Asks, without waiting, whether a viewer cancelled the execution."""
    if API.call("GET", f"/runs?{RUN_QUERY}&wait=0")["cancelled"]:
        raise Cancelled()


def summarize():
    """Streams the summary into the execution's room; an append answers `cancelled` once a viewer cancelled."""
    stream = API.call("POST", "/streams", {"room": ROOM, "type": "agent:thought", "data": {"runId": EXECUTION, "content": ""}, "runId": EXECUTION})
    for i in range(TOKENS):
        if API.call("POST", f"/streams/{stream['id']}/append", {"text": f"word{i} "})["cancelled"]:
            API.call("POST", f"/streams/{stream['id']}/end")
            raise Cancelled()
        time.sleep(STEP / 10)
    return API.call("POST", f"/streams/{stream['id']}/end")


def ask_user():
    """Asks the user who started the execution, in their own room, on every tab they have open."""
    question = API.call("POST", "/questions", {
        "user": USER,
        "type": "hitl_request",
        "data": {"requestId": f"{EXECUTION}-publish", "runId": EXECUTION, "question": "Publish the summary?",
                 "options": [{"id": "yes", "label": "Publish"}, {"id": "no", "label": "Discard"}]},
        "timeout": 60_000,
    })
    state = {"status": "pending"}
    while state["status"] == "pending":
        check_cancel()
        state = API.call("GET", f"/questions/{question['id']}?wait=1")
    return state


def run():
    API.call("POST", "/runs", {"room": ROOM, "runId": EXECUTION})
    to_both("task_update", {"taskId": EXECUTION, "runId": EXECUTION, "status": "running", "progress": 0, "message": "started"})
    say("started", graph=GRAPH)
    for index, (node_id, name) in enumerate(NODES):
        check_cancel()
        status(node_id, name, "running", index * 30)
        if node_id == "summarize":
            ended = summarize()
            say("streamed", seq=ended["seq"])
        elif node_id == "review":
            answer = ask_user()
            say("answered", status=answer["status"], answer=answer.get("answer"))
        else:
            time.sleep(STEP)
        status(node_id, name, "completed", (index + 1) * 30)
    published = bool(answer.get("answer") and answer["answer"].get("optionId") == "yes")
    API.call("POST", "/publish", {"room": ROOM, "type": "agent:result",
                                  "data": {"runId": EXECUTION, "output": {"published": published}, "summary": "done"}})
    to_both("task_update", {"taskId": EXECUTION, "runId": EXECUTION, "status": "succeeded", "progress": 100, "message": "done"})
    return "succeeded"


try:
    outcome = run()
except Cancelled:
    to_both("task_update", {"taskId": EXECUTION, "runId": EXECUTION, "status": "cancelled", "progress": 100, "message": "cancelled"})
    outcome = "cancelled"
API.call("DELETE", f"/runs?{RUN_QUERY}")
# A notification in the user's own room, wherever they are.
API.call("POST", "/publish", {"room": f"user:{USER}", "type": "error_notification",
                              "data": {"severity": "info", "message": f"Execution {EXECUTION} {outcome}", "runId": EXECUTION}})
say(outcome)
sys.exit(0)
