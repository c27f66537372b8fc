#!/usr/bin/env python3
"""A minimal arena game server in Python.

An arena host spawns it like any game binary (`arena up --game
pygame=examples/pygame/server.py`): it speaks hashicorp/go-plugin's gRPC
handshake on stdout and serves the process contract's plugins `lifecycle`
and `rooms` (proto/proc.proto; docs/your-game.md "Any language"). It needs
only Debian's python3-grpcio and python3-protobuf: the protobuf messages are
built at run time from proc_descriptor.bin (written by the Go package beside
it), so nothing is generated.

The game itself is the smallest there is: every room assigned to it lasts
`room_seconds` (from the game's configuration JSON, default 2) and then
ends with reason "done"; the process reports the load through Watch events
and answers /healthz and /status over HTTP on the port the host chose.
"""

import json
import os
import queue
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# The handshake (proc.Handshake in Go): the host sets the cookie in the
# environment; the app protocol version must be the host's.
MAGIC_KEY = "ARENA_PROC_PLUGIN"
MAGIC_VALUE = "3f7c1e0a-arena-proc-v1"
APP_PROTOCOL_VERSION = 2
PKG = "arena.proc.v1."


def load_messages():
    """Message classes from the descriptor set, by short name."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "proc_descriptor.bin"), "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)

    def cls(full):
        return factory.GetPrototype(pool.FindMessageTypeByName(full))

    return cls


M = load_messages()
StartRequest, Started = M(PKG + "StartRequest"), M(PKG + "Started")
StatusRequest, ProcessStatus = M(PKG + "StatusRequest"), M(PKG + "ProcessStatus")
DrainRequest, DrainResponse = M(PKG + "DrainRequest"), M(PKG + "DrainResponse")
WatchRequest, Event = M(PKG + "WatchRequest"), M(PKG + "Event")
AssignRoomRequest, BackfillRequest = M(PKG + "AssignRoomRequest"), M(PKG + "BackfillRequest")
LoadResponse = M(PKG + "LoadResponse")
RpcStatus, ErrorInfo, Any = M("google.rpc.Status"), M("google.rpc.ErrorInfo"), M("google.protobuf.Any")

# proc's sentinel errors: gRPC code and ErrorInfo reason (proc/errors.go).
ERRORS = {
    "PORT_IN_USE": grpc.StatusCode.ALREADY_EXISTS,
    "DRAINING": grpc.StatusCode.UNAVAILABLE,
    "ROOM_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "UNKNOWN_ROOM": grpc.StatusCode.NOT_FOUND,
    "ROOM_FULL": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "NOT_STARTED": grpc.StatusCode.FAILED_PRECONDITION,
    "BAD_OPTIONS": grpc.StatusCode.INVALID_ARGUMENT,
}


def fail(context, reason, message):
    """Ends the call with proc's error: a code and an ErrorInfo reason."""
    code = ERRORS[reason]
    info = ErrorInfo(reason=reason, domain="arena.proc")
    detail = Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info.SerializeToString())
    st = RpcStatus(code=code.value[0], message=message, details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
    context.abort(code, message)


def log(level, msg, **kv):
    """One JSON log line on stderr in hclog's shape (the host forwards it)."""
    line = {"@level": level, "@message": msg, "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}
    line.update(kv)
    print(json.dumps(line), file=sys.stderr, flush=True)


class Game:
    """The process: its rooms, its load, its events."""

    def __init__(self):
        self.lock = threading.Lock()
        self.started = None  # the advertised address once started
        self.rooms = {}
        self.draining = False
        self.room_seconds = 2.0
        self.watchers = []
        self.http = None

    def publish(self, ev):
        with self.lock:
            for w in self.watchers:
                w.put(ev)

    # --- lifecycle ---

    def Start(self, req, context):
        with self.lock:
            if self.started:
                return Started(addr=self.started, pid=os.getpid(), load=len(self.rooms))
        cfg = {}
        if req.HasField("game") and req.game.config_json:
            try:
                cfg = json.loads(req.game.config_json)
                self.room_seconds = float(cfg.get("room_seconds", self.room_seconds))
            except (ValueError, TypeError) as e:
                fail(context, "BAD_OPTIONS", "start: bad game config: %s" % e)
        bind = req.bind_host or "127.0.0.1"
        try:
            self.http = ThreadingHTTPServer((bind, req.port), self.handler())
        except OSError as e:
            fail(context, "PORT_IN_USE", "start: listen %s:%d: %s" % (bind, req.port, e))
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        host = req.advertise_host or (bind if bind not in ("0.0.0.0", "::") else "127.0.0.1")
        with self.lock:
            self.started = "%s:%d" % (host, self.http.server_address[1])
        log("info", "python game server listening", addr=self.started, kind=req.kind)
        return Started(addr=self.started, pid=os.getpid(), load=0)

    def Status(self, req, context):
        with self.lock:
            if not self.started:
                fail(context, "NOT_STARTED", "status: not started")
            return ProcessStatus(load=len(self.rooms), draining=self.draining, rooms=sorted(self.rooms))

    def Drain(self, req, context):
        with self.lock:
            self.draining = True
        while time.time() * 1000 < req.deadline_unix_ms and context.is_active():
            with self.lock:
                if not self.rooms:
                    break
            time.sleep(0.02)
        with self.lock:
            return DrainResponse(load=len(self.rooms))

    def Watch(self, req, context):
        q = queue.Queue()
        with self.lock:
            self.watchers.append(q)
        try:
            while context.is_active():
                try:
                    yield q.get(timeout=0.2)
                except queue.Empty:
                    pass
        finally:
            with self.lock:
                self.watchers.remove(q)

    # --- rooms ---

    def AssignRoom(self, req, context):
        with self.lock:
            if not self.started:
                fail(context, "NOT_STARTED", "assign room: not started")
            if self.draining:
                fail(context, "DRAINING", "assign room: draining")
            if req.room in self.rooms:
                fail(context, "ROOM_EXISTS", "assign room %s: already hosted" % req.room)
            self.rooms[req.room] = [p.uuid for p in req.players]
            load = len(self.rooms)
        log("info", "room assigned", room=req.room, players=len(req.players), load=load)
        self.publish(Event(load_changed={"load": load}))
        threading.Timer(self.room_seconds, self.end_room, args=(req.room,)).start()
        return LoadResponse(load=load)

    def Backfill(self, req, context):
        with self.lock:
            if req.room not in self.rooms:
                fail(context, "UNKNOWN_ROOM", "backfill: no room %s" % req.room)
            self.rooms[req.room] += [p.uuid for p in req.players]
            return LoadResponse(load=len(self.rooms))

    def end_room(self, room):
        with self.lock:
            self.rooms.pop(room, None)
            load = len(self.rooms)
        log("info", "room ended", room=room, load=load)
        self.publish(Event(room_ended={"room": room, "load": load, "reason": "done"}))

    def handler(self):
        game = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/healthz":
                    body = b"ok"
                elif self.path == "/status":
                    with game.lock:
                        body = json.dumps({"rooms": sorted(game.rooms), "draining": game.draining}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return H


def unary(fn, req_cls, resp_cls):
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req_cls.FromString,
                                               response_serializer=resp_cls.SerializeToString)


def main():
    if os.environ.get(MAGIC_KEY) != MAGIC_VALUE:
        print("this is an arena game server: an arena host starts it (arena up --game NAME=PATH), not a person",
              file=sys.stderr)
        return 1
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(APP_PROTOCOL_VERSION)).split(",")
    if str(APP_PROTOCOL_VERSION) not in versions:
        print("the host speaks process contract versions %s; this server speaks %d" % (versions, APP_PROTOCOL_VERSION),
              file=sys.stderr)
        return 1
    game = Game()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    raw = dict(request_deserializer=lambda b: b, response_serializer=lambda b: b)
    stopped = threading.Event()

    def shutdown(req, context):
        threading.Timer(0.1, stopped.set).start()
        return b""

    def broker(it, context):
        for _ in it:  # the host's broker stream: nothing is brokered here
            pass
        return iter(())

    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("arena.proc.v1.Lifecycle", {
            "Start": unary(game.Start, StartRequest, Started),
            "Status": unary(game.Status, StatusRequest, ProcessStatus),
            "Drain": unary(game.Drain, DrainRequest, DrainResponse),
            "Watch": grpc.unary_stream_rpc_method_handler(game.Watch, request_deserializer=WatchRequest.FromString,
                                                          response_serializer=Event.SerializeToString),
        }),
        grpc.method_handlers_generic_handler("arena.proc.v1.Rooms", {
            "AssignRoom": unary(game.AssignRoom, AssignRoomRequest, LoadResponse),
            "Backfill": unary(game.Backfill, BackfillRequest, LoadResponse),
        }),
        # go-plugin's own services: health ("plugin" is SERVING: status 1),
        # the controller (Shutdown) and the broker.
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\x08\x01", **raw),
        }),
        grpc.method_handlers_generic_handler("plugin.GRPCController", {
            "Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, **raw),
        }),
        grpc.method_handlers_generic_handler("plugin.GRPCBroker", {
            "StartStream": grpc.stream_stream_rpc_method_handler(broker, **raw),
        }),
    ))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # The handshake line: core protocol 1, app protocol, network, address, protocol.
    print("1|%d|tcp|127.0.0.1:%d|grpc" % (APP_PROTOCOL_VERSION, port), flush=True)
    ppid = os.getppid()
    while not stopped.wait(0.25):
        if os.getppid() != ppid:  # the host died: no process outlives its host
            break
    server.stop(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
