"""Runs the relay against a live arena with recording stand-ins for the
Django side, until N create_player messages were sent; prints the calls as
JSON lines. Used by dispatcher/relay_test.go."""

import json
import sys

from relay import Relay, events

base, token, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
sent = 0


def record(*call):
    global sent
    print(json.dumps(call), flush=True)
    if call[0] == "group_send":
        sent += 1


relay = Relay(lambda g, c: record("group_add", g, c), lambda g, m: record("group_send", g, m),
              lambda k, v, ttl: record("cache_set", k, v, ttl))
print(json.dumps(["ready"]), flush=True)
for cursor, a in events(base, token, 0):
    relay.handle(a)
    if sent >= want:
        break
