#!/usr/bin/env python3
"""An agent in Python that reaches the browsers of a fastify-realtime app through its HTTP server API.

Standard library only. It publishes progress events, streams an answer token by token, asks the person a question
and waits for the answer, then works until the person cancels its run.

    REALTIME_API=http://localhost:3000/ws/api REALTIME_KEY=... ROOM=workflow:42 python3 agent.py

Each step prints one JSON line, so a supervisor (or a test) can follow it.
"""
import json
import os
import sys
import urllib.parse

from realtime_api import Api

API = Api(os.environ.get("REALTIME_API", "http://127.0.0.1:3000/ws/api"), os.environ["REALTIME_KEY"])
ROOM = os.environ.get("ROOM", "workflow:42")
RUN = os.environ.get("RUN_ID", "run-1")
EVENTS = int(os.environ.get("EVENTS", "1000"))
TOKENS = int(os.environ.get("TOKENS", "2000"))
call = API.call


def say(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def thought(content, step=None):
    data = {"runId": RUN, "content": content}
    if step is not None:
        data["step"] = step
    return {"type": "agent:thought", "data": data}


# 1. Progress: one event per step, each with its seq in the room. The Idempotency-Key makes a retry safe.
last = None
for i in range(EVENTS):
    last = call("POST", "/publish", {"room": ROOM, **thought(f"step {i}", i)}, {"Idempotency-Key": f"{RUN}-step-{i}"})
say("published", events=EVENTS, seq=last and last["seq"])

# 2. An answer streamed token by token: viewers see it grow; one who joins midway gets the text so far.
stream = call("POST", "/streams", {"room": ROOM, **thought("")})
for i in range(TOKENS):
    call("POST", f"/streams/{stream['id']}/append", {"text": f"tok{i} "})
ended = call("POST", f"/streams/{stream['id']}/end")
say("streamed", tokens=TOKENS, seq=ended["seq"])

# 3. A question for the person: the first answer from any of their tabs wins.
question = call("POST", "/questions", {
    "room": ROOM,
    "type": "hitl_request",
    "data": {"requestId": "approve", "runId": RUN, "question": "Deploy to production?",
             "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]},
})
state = {"status": "pending"}
while state["status"] == "pending":
    state = call("GET", f"/questions/{question['id']}?wait=30")
say("answered", status=state["status"], answer=state.get("answer"))

# 4. Work until cancelled: the run is registered, then the agent waits (here, only waits) for a person's cancel.
call("POST", "/runs", {"room": ROOM, "runId": RUN})
call("POST", "/publish", {"room": ROOM, **thought("working until cancelled")})
run = {"cancelled": False}
while not run["cancelled"]:
    run = call("GET", f"/runs?room={urllib.parse.quote(ROOM)}&runId={urllib.parse.quote(RUN)}&wait=30")
say("cancelled", reason=run.get("reason"))
call("DELETE", f"/runs?room={urllib.parse.quote(ROOM)}&runId={urllib.parse.quote(RUN)}")
sys.exit(0)
