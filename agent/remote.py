"""The agent in another process: documents over bluesky's zmq Publisher/Proxy (read by our `DocumentReader`),
decisions over a zmq REQ/REP socket, msgpack on both (never pickle).

Wiring (all addresses explicit ``tcp://127.0.0.1:PORT``)::

    plan process                                  agent process (`xrd-agent serve-agent`)
    RunEngine -> Publisher --(documents)--> Proxy in | Proxy out --> DocumentReader -> ScanAgent
    plan: RemoteAgent.ask --(REQ: run uid, n points)-------------> REP: ScanAgent.decision_for
          <------------------------------------------(REP: decision record)--

The two paths are independent, so the agent answers a question only once it has seen the points
the question is about (`ScanAgent.decision_for` waits for them, within the request's timeout).

The server never dies of a message: garbage, oversized or wrong-schema documents and requests --
an unknown document name such as ``x bogus y`` included -- are dropped with a log line (documents)
or answered with an error (requests), and the agent keeps serving. Its ``health`` request reports
every thread it depends on (the document proxy, the document reader, the decision socket); a
``hello`` from a plan is refused while one of them is down, so the plan knows before its run.
``load_model`` swaps the served model only once the new one has loaded and validated: a corrupt,
truncated or mismatched model file leaves the previous model serving.

The client never hangs: every request is polled with a timeout; after a timeout the REQ socket is
closed with ``linger=0`` and a fresh one made (a REQ socket whose reply was lost refuses to send
again), and `AgentTimeout` is raised for the plan to fall back on fine steps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import msgpack
import msgpack_numpy
import zmq
from bluesky.callbacks.zmq import Proxy, Publisher
from event_model import DocumentNames

from agent.callback import AgentNotReady, ScanAgent
from agent.decision import Decision

DEFAULT_DOCUMENTS_IN = "tcp://127.0.0.1:5577"
"""Where the plan's Publisher sends documents (the proxy's input)."""
DEFAULT_DOCUMENTS_OUT = "tcp://127.0.0.1:5578"
"""Where the agent's document reader reads documents (the proxy's output)."""
DEFAULT_DECISIONS = "tcp://127.0.0.1:5579"
"""The agent's REP socket for decisions."""
DEFAULT_TIMEOUT_S = 1.0
"""How long the plan waits for a decision before falling back, seconds."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
MAX_DOCUMENT_BYTES = 16 * 2**20
"""Larger documents are dropped (a point detector's event is under a kilobyte)."""
MAX_REQUEST_BYTES = 64 * 2**10
"""Larger requests are refused (a decision request is under a hundred bytes)."""

logger = logging.getLogger(__name__)


class AgentTimeout(TimeoutError):
    """The remote agent did not answer in time (dead, stuck or unreachable)."""


class AgentError(RuntimeError):
    """The remote agent answered with an error."""


def loopback_address(address: str) -> str:
    """Validate a ``tcp://127.0.0.1:PORT`` address and return it.

    Raises
    ------
    ValueError
        If the address is not TCP on the loopback interface with a port in 1-65535 (the agent
        binds nothing else: no 0.0.0.0, no integer-only ports, which bluesky maps to 0.0.0.0).
    """
    if not isinstance(address, str) or not address.startswith("tcp://"):
        raise ValueError(f"address must look like tcp://127.0.0.1:PORT, got {address!r}")
    host, _, port = address[len("tcp://") :].rpartition(":")
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"address must be on the loopback interface (127.0.0.1), got {address!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address needs a port in 1-65535, got {address!r}")
    return f"tcp://127.0.0.1:{int(port)}"


def pack(message: Any) -> bytes:
    """msgpack with numpy support (documents carry numpy scalars and arrays)."""
    return msgpack.packb(message, default=msgpack_numpy.encode, use_bin_type=True)


def _decode(obj: dict) -> Any:
    """msgpack-numpy's decoder without its one unsafe branch: it unpickles object arrays."""
    if b"nd" in obj and obj.get(b"kind") == b"O":
        raise ValueError("an object array (msgpack-numpy would unpickle it) is refused")
    return msgpack_numpy.decode(obj)


def unpack(payload: bytes) -> Any:
    """Inverse of `pack`; raises ValueError on bytes that are not msgpack or that carry a pickle."""
    try:
        return msgpack.unpackb(payload, object_hook=_decode, raw=False)
    except (msgpack.UnpackException, ValueError, TypeError) as exc:
        raise ValueError(f"not a msgpack message: {exc}") from exc


class DocumentReader:
    """Read bluesky documents from the proxy's output and feed them to a callback, one at a time.

    It replaces bluesky's `RemoteDispatcher`, whose receiving task dies on the first message with
    an unknown document name (``DocumentNames[name]`` raises outside its error handling): here
    every malformed, oversized or wrong-schema message, and every document the callback refuses,
    is dropped with a log line and counted, and reading goes on. Same wire format: ``prefix name
    payload`` separated by single spaces, payload msgpack.
    """

    def __init__(self, context: zmq.Context, address: str, callback: Any) -> None:
        self.callback = callback
        self.received = 0
        self.dropped = 0
        self.last_drop = ""
        self._socket = context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(address)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self.last_drop = why
        logger.warning("document dropped: %s", why)

    def handle(self, message: bytes) -> None:
        """Dispatch one wire message, or drop it with a log line."""
        self.received += 1
        if len(message) > MAX_DOCUMENT_BYTES:
            return self._drop(f"{len(message)} bytes, over the {MAX_DOCUMENT_BYTES} byte limit")
        parts = message.split(b" ", 2)
        if len(parts) != 3:
            return self._drop(f"not 'prefix name payload': {message[:60]!r}")
        name = parts[1].decode("utf-8", "replace")
        if name not in DocumentNames.__members__:
            return self._drop(f"unknown document name {name[:40]!r}")
        try:
            doc = unpack(parts[2])
        except ValueError as exc:
            return self._drop(f"{name}: {exc}")
        if not isinstance(doc, dict):
            return self._drop(f"{name}: payload is a {type(doc).__name__}, not a document")
        try:
            self.callback(name, doc)
        except Exception as exc:  # noqa: BLE001 - a document the agent cannot use must not stop the reading
            self._drop(f"{name} refused by the agent ({type(exc).__name__}: {exc})")

    def run(self, stop: threading.Event, poll_ms: int = 100) -> None:
        """Read until `stop` is set."""
        try:
            while not stop.is_set():
                if self._socket.poll(poll_ms, zmq.POLLIN):
                    self.handle(self._socket.recv())
        finally:
            self._socket.close(linger=0)


class AgentServer:
    """Serve a `ScanAgent` to plans in other processes.

    Parameters
    ----------
    agent : ScanAgent
        The agent (model + policy).
    documents_in : str
        Proxy input the plans' Publishers connect to (``tcp://127.0.0.1:PORT``).
    documents_out : str
        Proxy output the agent's document reader reads.
    decisions : str
        Address the REP socket binds.
    run_proxy : bool
        Start the bluesky zmq Proxy in this process (else one must already run at those addresses).
    """

    def __init__(
        self,
        agent: ScanAgent,
        *,
        documents_in: str = DEFAULT_DOCUMENTS_IN,
        documents_out: str = DEFAULT_DOCUMENTS_OUT,
        decisions: str = DEFAULT_DECISIONS,
        run_proxy: bool = True,
    ) -> None:
        self.agent = agent
        self.documents_in = loopback_address(documents_in)
        self.documents_out = loopback_address(documents_out)
        self.decisions = loopback_address(decisions)
        self.requests_served = 0
        self._stop = threading.Event()
        self._context = zmq.Context()
        self._rep = self._context.socket(zmq.REP)
        self._rep.setsockopt(zmq.LINGER, 0)
        self._rep.bind(self.decisions)  # bind first: a busy port fails before anything starts
        self._threads: dict[str, threading.Thread] = {}
        if run_proxy:
            self._proxy = Proxy(self.documents_in, self.documents_out)
            self._threads["proxy"] = threading.Thread(target=self._proxy.start, name="xrd-agent-proxy", daemon=True)
        self.reader = DocumentReader(self._context, self.documents_out, self.agent)
        self._threads["documents"] = threading.Thread(target=self.reader.run, args=(self._stop,),
                                                      name="xrd-agent-documents", daemon=True)
        for thread in self._threads.values():
            thread.start()

    def health(self) -> dict[str, Any]:
        """Every thread the agent depends on (alive or not), the document counts and the model."""
        threads = {name: thread.is_alive() for name, thread in self._threads.items()}
        threads["decisions"] = not self._stop.is_set()  # this thread: it is answering
        return {
            "ok": True,  # the request succeeded; "healthy" is the answer
            "healthy": all(threads.values()),
            "threads": threads,
            "documents_received": self.reader.received,
            "documents_dropped": self.reader.dropped,
            "last_drop": self.reader.last_drop,
            "requests_served": self.requests_served,
            "model_version": str(self.agent.classifier.version),
        }

    def _load_model(self, path: str) -> dict[str, Any]:
        from models.classifier import Classifier  # torch only where a model is loaded

        task = str(getattr(self.agent.classifier, "task", "")) or None
        previous = str(self.agent.classifier.version)
        try:
            classifier = Classifier.load(path, task=task)
        except (OSError, ValueError) as exc:
            logger.warning("load_model %s refused (%s); keeping model %s", path, exc, previous)
            return {"ok": False, "error": f"model not loaded, still serving {previous}: {exc}"}
        self.agent.model_source = None  # an explicitly loaded model stays until the next load
        self.agent.use_model(classifier)
        logger.warning("model %s replaces %s from the next run on", classifier.version, previous)
        return {"ok": True, "agent": self.agent.describe()}

    def handle(self, request: Any) -> dict[str, Any]:
        """Answer one decoded request; never raises (errors become ``{"ok": False, "error": ...}``)."""
        if not isinstance(request, dict) or "op" not in request:
            return {"ok": False, "error": "request must be a map with an 'op' key"}
        op = request["op"]
        try:
            if op == "health":
                return self.health()
            if op == "hello":
                health = self.health()
                if not health["healthy"]:
                    down = sorted(name for name, alive in health["threads"].items() if not alive)
                    return {"ok": False, "error": f"agent unhealthy: thread(s) {', '.join(down)} down", "health": health}
                return {"ok": True, "agent": self.agent.describe()}
            if op == "decide":
                run_uid = str(request["run_uid"])
                n_points = int(request["n_points"])
                # answer before the client gives up: leave it a margin for the reply to travel
                wait = max(0.0, 0.8 * float(request.get("timeout", DEFAULT_TIMEOUT_S)))
                decision = self.agent.decision_for(run_uid, n_points, timeout=wait)
                return {"ok": True, "decision": decision.to_dict()}
            if op == "load_model":
                return self._load_model(str(request["path"]))
            return {"ok": False, "error": f"unknown op {op!r}"}
        except (KeyError, TypeError, ValueError, AgentNotReady) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # noqa: BLE001 - a model failure must reach the plan, not kill the server
            return {"ok": False, "error": f"agent failed: {type(exc).__name__}: {exc}"}

    def serve_forever(self, poll_ms: int = 100) -> None:
        """Answer requests until `stop` is called (or the process is killed)."""
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(poll_ms):
                continue
            payload = self._rep.recv()
            if len(payload) > MAX_REQUEST_BYTES:
                logger.warning("request of %d bytes refused", len(payload))
                reply = {"ok": False, "error": f"request of {len(payload)} bytes, over the {MAX_REQUEST_BYTES} byte limit"}
            else:
                try:
                    reply = self.handle(unpack(payload))
                except ValueError as exc:
                    logger.warning("request refused: %s", exc)
                    reply = {"ok": False, "error": str(exc)}
            self._rep.send(pack(reply))
            self.requests_served += 1
        self._rep.close()

    def stop(self) -> None:
        """Ask `serve_forever` and the document reader to return (within one poll interval)."""
        self._stop.set()


class RemoteAgent:
    """The plan's side of a remote agent: publishes documents, asks for decisions.

    Parameters
    ----------
    decisions : str
        The agent's REP address (``tcp://127.0.0.1:PORT``).
    documents_in : str
        The proxy input to publish documents to.
    connect_wait : float
        Seconds to wait after connecting the Publisher, so the first documents are not dropped
        (a zmq PUB socket drops messages until the connection is up).
    """

    kind = "remote"

    def __init__(
        self,
        decisions: str = DEFAULT_DECISIONS,
        documents_in: str = DEFAULT_DOCUMENTS_IN,
        *,
        connect_wait: float = 0.3,
    ) -> None:
        self.decisions = loopback_address(decisions)
        self.documents_in = loopback_address(documents_in)
        self._publisher = Publisher(self.documents_in, serializer=pack)
        # bluesky's Publisher keeps zmq's default infinite linger: closing it while the agent is dead
        # would block forever on undeliverable documents. Drop them instead (its socket is private).
        self._publisher._socket.setsockopt(zmq.LINGER, 0)
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._new_socket()
        self.roundtrips_ms: list[float] = []
        time.sleep(connect_wait)

    def _new_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
        self._socket = self._context.socket(zmq.REQ)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(self.decisions)

    @property
    def document_callback(self) -> Publisher:
        """The Publisher; the plan subscribes it for the run's duration."""
        return self._publisher

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait at most `timeout` s for the reply.

        Raises
        ------
        AgentTimeout
            No reply in time (the socket is replaced so the next request can be sent).
        AgentError
            The agent replied with an error or with something that is not a reply.
        """
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        assert self._socket is not None
        self._socket.send(pack(message))
        if not self._socket.poll(int(math.ceil(timeout * 1e3)), zmq.POLLIN):
            self._new_socket()
            raise AgentTimeout(f"no answer from the agent at {self.decisions} within {timeout:g} s")
        reply = unpack(self._socket.recv())
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else repr(reply)
            raise AgentError(f"agent at {self.decisions}: {error}")
        return reply

    def describe(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The agent's model identity (raises AgentTimeout / AgentError)."""
        return {**self.request({"op": "hello"}, timeout)["agent"], "agent": self.kind, "address": self.decisions}

    def health(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The agent's health: ``healthy``, ``threads`` (name -> alive), document and request counts,
        ``model_version`` (raises AgentTimeout when the agent does not answer)."""
        reply = self.request({"op": "health"}, timeout)
        return {k: v for k, v in reply.items() if k != "ok"}

    def load_model(self, path: str, timeout: float = 60.0) -> dict[str, Any]:
        """Have the agent serve the model directory `path` (on the agent's machine) from its next run.

        Raises
        ------
        AgentError
            The model did not load (corrupt, truncated, another task...); the agent keeps its model.
        """
        return dict(self.request({"op": "load_model", "path": str(path)}, timeout)["agent"])

    def ask(self, run_uid: str, n_points: int, timeout: float = DEFAULT_TIMEOUT_S) -> Decision:
        """The decision after `n_points` points of run `run_uid` (raises AgentTimeout / AgentError)."""
        started = time.perf_counter()
        reply = self.request({"op": "decide", "run_uid": run_uid, "n_points": int(n_points), "timeout": timeout}, timeout)
        self.roundtrips_ms.append(1e3 * (time.perf_counter() - started))
        return Decision.from_dict(reply["decision"])

    def close(self) -> None:
        """Close the sockets."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._context.term()
        self._publisher.close()
