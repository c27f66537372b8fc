#! /usr/bin/env python3
"""Relay arena's matches to the seed's Django app.

The seed's match server (seed 000, match_system/src/main.py) did three
things for the Django side when it formed a room: it added each player's
Channels channel to a group named room-UUID1-UUID2-UUID3, cached the room's
players with hp 100 for an hour under that name, and sent create_player to
the group for each player. With arena as the match server (the seed's
Thrift client pointed at `arena dispatcher --thrift 127.0.0.1:9090`), this
relay does the same from arena's assignment stream:

    python3 relay.py http://127.0.0.1:8080 BACKEND_TOKEN [CURSOR_FILE]

It follows GET /v1/assignments (server-sent events) and remembers the last
cursor in CURSOR_FILE, so after a restart it resumes where it stopped
(arena keeps an hour). Run it with DJANGO_SETTINGS_MODULE set, beside the
Django app (it uses the app's channel layer and cache, as the seed did).
"""

import json
import os
import sys
import time
import urllib.request

ROOM_TTL = 3600  # the seed cached rooms for an hour


class Relay:
    """What the seed's match_success did, fed by arena's assignments.

    arena streams one assignment per player (with that player's
    channel_name); the relay adds each player's channel to the room's group
    as it arrives, and when every player of the room has arrived it caches
    the room and sends create_player for each player, in the room's order,
    as the seed did. group_add(group, channel), group_send(group, message)
    and cache_set(key, value, ttl) are the Django side's (synchronous)
    calls.
    """

    def __init__(self, group_add, group_send, cache_set):
        self.group_add = group_add
        self.group_send = group_send
        self.cache_set = cache_set
        self.rooms = {}  # arena room id -> channels seen

    @staticmethod
    def room_name(players):
        """The seed's group name: room-UUID1-UUID2-..."""
        return "room-" + "-".join(p["uuid"] for p in players)

    def handle(self, a):
        """Handles one assignment (a dict from the stream)."""
        if a.get("event") != "match" or not a.get("players"):
            return
        players = a["players"]
        name = self.room_name(players)
        seen = self.rooms.setdefault(a["room"], {})
        if a["uuid"] in seen:
            return  # a replay after a resume
        seen[a["uuid"]] = a.get("channel_name", "")
        if a.get("channel_name"):
            self.group_add(name, a["channel_name"])
        if len(seen) < len(players):
            return
        del self.rooms[a["room"]]
        self.cache_set(name, [
            {"uuid": p["uuid"], "username": p["username"], "photo": p["photo"], "hp": 100}
            for p in players
        ], ROOM_TTL)
        for p in players:
            self.group_send(name, {
                "type": "group_send_event",
                "event": "create_player",
                "uuid": p["uuid"],
                "username": p["username"],
                "photo": p["photo"],
            })


def events(base, token, after):
    """Yields (cursor, assignment) from arena's stream after cursor after."""
    url = "%s/v1/assignments?after=%d" % (base.rstrip("/"), after)
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req) as resp:
        data = []
        for raw in resp:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                a = json.loads("\n".join(data))
                data = []
                yield a["cursor"], a


def main():
    base, token = sys.argv[1], sys.argv[2]
    cursor_file = sys.argv[3] if len(sys.argv) > 3 else "relay.cursor"
    import django
    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.core.cache import cache

    layer = get_channel_layer()
    relay = Relay(async_to_sync(layer.group_add), async_to_sync(layer.group_send), cache.set)
    after = 0
    if os.path.exists(cursor_file):
        with open(cursor_file) as f:
            after = int(f.read().strip() or 0)
    while True:
        try:
            for cursor, a in events(base, token, after):
                relay.handle(a)
                after = cursor
                with open(cursor_file, "w") as f:
                    f.write(str(after))
        except Exception as e:  # the dispatcher restarted: resume
            print("relay: %s; resuming after %d" % (e, after), file=sys.stderr)
            time.sleep(1)


if __name__ == "__main__":
    main()
