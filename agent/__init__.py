"""xrd-agent agent: the streaming classification agent that steers an adaptive scan.

* `agent.partial_scan` -- the points measured so far, rebuilt from event documents;
* `agent.policy` -- the pure decision (coarse / fine / back-step / stop);
* `agent.decision` -- the records exchanged between plan and agent;
* `agent.callback` -- the agent as a bluesky callback (RunRouter factory) and the in-process channel;
* `agent.remote` -- the agent in another process over zmq (msgpack, 127.0.0.1 only).
"""
